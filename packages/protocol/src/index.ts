/** @syncbridge/protocol: the wire protocol and REST types with runtime schemas, shared by server and client. */
export * from './channels.ts';
export * from './devices.ts';
export * from './errors.ts';
export * from './messages.ts';
export * from './model.ts';
export * from './rest.ts';
export * from './webhooks.ts';
