/**
 * @syncbridge/protocol: the wire protocol and REST types with runtime schemas, shared by server and client.
 *
 * The package has no side effects (`"sideEffects": false`): a bundle that imports only types and the
 * constants below (`PROTOCOL_VERSION`, `CLOSE_CODES`, `parseChannel`, the filter, merge-patch and HLC rules…) leaves the TypeBox schemas, and
 * TypeBox itself, out. Keep those constants in modules that do not import TypeBox.
 */
export * from './branches.ts';
export * from './channels.ts';
export * from './connectors.ts';
export * from './devices.ts';
export * from './errors.ts';
export * from './filters.ts';
export * from './hlc.ts';
export * from './merge-patch.ts';
export * from './messages.ts';
export * from './model.ts';
export * from './names.ts';
export * from './rest.ts';
export * from './sync-error.ts';
export * from './version.ts';
export * from './webhooks.ts';
