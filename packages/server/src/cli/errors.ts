/**
 * Errors a `syncbridge` command expects and reports in one line (`syncbridge: <message>`, exit code 1),
 * never with a stack trace: a wrong argument, a tenant that does not exist, a file that cannot be read.
 */
export class CommandError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'CommandError';
  }
}
