/** Checks of the webhook settings beyond their schema, run when the config loads. */
import { parseSchedule } from './retry.ts';
import { AddressPolicy } from './ssrf.ts';

/** The problems of the webhook settings, one message each. */
export function webhookConfigProblems(config: {
  webhookRetrySchedule: string;
  webhookAllowPrivate: readonly string[];
}): string[] {
  const problems: string[] = [];
  try {
    parseSchedule(config.webhookRetrySchedule);
  } catch (err) {
    problems.push((err as Error).message);
  }
  try {
    new AddressPolicy(config.webhookAllowPrivate);
  } catch (err) {
    problems.push((err as Error).message);
  }
  return problems;
}
