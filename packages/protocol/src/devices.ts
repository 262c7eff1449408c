/**
 * Devices and selective sync: a device is one installation of a client (a phone, a browser profile, a
 * desktop app) of one user, registered over REST (`/v1/devices`) or in `hello`. Its `categories` are the
 * collections it syncs: its connections may subscribe to records channels of those collections only.
 * The server keeps the device's cursor (the last seq it acknowledged) and reports what is pending after
 * it when the device connects.
 */
import { type Static, Type } from '@sinclair/typebox';
import { Name } from './model.ts';

/** A device id as the client chooses it: letters, digits and `_.:-`, as at the WebSocket upgrade. */
export const DeviceId = Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9_.:\\-]+$' });

/**
 * Wire features a connection can speak, named in `hello.capabilities`:
 * - `batch`: several `event`s of one channel may arrive in one `events` frame.
 */
export const WIRE_CAPABILITIES = ['batch'] as const;
export type WireCapability = (typeof WIRE_CAPABILITIES)[number];

/**
 * How the server paces what it sends a device (docs/protocol.md, "Paced sync"): a bandwidth budget every
 * connection of the device is held to, the order in which its collections catch up, and whether a long
 * backlog may be conflated to the latest version of each record. Null clears a setting.
 */
export const DeviceBandwidth = Type.Object(
  {
    bytesPerSecond: Type.Integer({
      minimum: 1024,
      maximum: 1_000_000_000,
      description: 'at most this many bytes of frames per second to each connection of the device',
    }),
  },
  { additionalProperties: false },
);
export type DeviceBandwidth = Static<typeof DeviceBandwidth>;
const DeviceSyncFields = {
  bandwidth: Type.Optional(Type.Union([DeviceBandwidth, Type.Null()])),
  priorities: Type.Optional(
    Type.Union(
      [
        Type.Record(Name, Type.Integer({ minimum: -1000, maximum: 1000 }), {
          maxProperties: 256,
        }),
        Type.Null(),
      ],
      {
        description:
          'per collection: a backlog of a higher priority is sent before those of lower ones (unnamed: 0)',
      },
    ),
  ),
  conflate: Type.Optional(
    Type.Boolean({
      description:
        'a catch-up may skip intermediate versions and send only the latest change of each record (announced by a `conflated` frame)',
    }),
  ),
};

/** What a client says about its device; every field optional, and a registration changes only those given. */
export const DeviceInfo = Type.Object(
  {
    type: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 32,
        pattern: '^[A-Za-z0-9_.\\-]+$',
        description: 'browser, mobile, desktop, tablet, server, … (free text)',
      }),
    ),
    name: Type.Optional(Type.String({ maxLength: 200 })),
    platform: Type.Optional(Type.String({ maxLength: 100, description: 'e.g. "iOS 18", "Chrome 140"' })),
    appVersion: Type.Optional(Type.String({ maxLength: 64 })),
    capabilities: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 64 }), {
        maxItems: 64,
        description: 'what the installation can do (free text: offline, camera, batch, …)',
      }),
    ),
    categories: Type.Optional(
      Type.Union([Type.Array(Name, { maxItems: 256 }), Type.Null()], {
        description:
          'the collections this device syncs; null (or never set): every collection; []: none (domain events only)',
      }),
    ),
    ...DeviceSyncFields,
  },
  { additionalProperties: false },
);
export type DeviceInfo = Static<typeof DeviceInfo>;

/** A registered device, as the REST API returns it. */
export const Device = Type.Object({
  id: Type.String(),
  user: Type.String(),
  type: Type.Optional(Type.String()),
  name: Type.Optional(Type.String()),
  platform: Type.Optional(Type.String()),
  appVersion: Type.Optional(Type.String()),
  capabilities: Type.Array(Type.String()),
  categories: Type.Union([Type.Array(Type.String()), Type.Null()]),
  createdAt: Type.String(),
  updatedAt: Type.String(),
  bandwidth: Type.Optional(Type.Union([DeviceBandwidth, Type.Null()])),
  priorities: Type.Optional(Type.Union([Type.Record(Type.String(), Type.Integer()), Type.Null()])),
  conflate: Type.Optional(Type.Boolean()),
  /** When a connection of this device last authenticated. */
  lastSeenAt: Type.Optional(Type.String()),
});
export type Device = Static<typeof Device>;

/** What is waiting for a device after its cursor: record changes in its categories, and domain events. */
export const DevicePending = Type.Object({
  /** The last seq the device acknowledged (0: never). */
  cursor: Type.Integer(),
  /** The tenant's head seq. */
  head: Type.Integer(),
  /** Record changes after the cursor in the device's categories. */
  count: Type.Integer(),
  /** Domain events after the cursor (categories do not narrow them). */
  events: Type.Integer(),
  /** `count` by collection. */
  collections: Type.Record(Type.String(), Type.Integer()),
  /** True when more entries follow the cursor than the server counts (100 000): the counts are lower bounds. */
  capped: Type.Optional(Type.Boolean()),
});
export type DevicePending = Static<typeof DevicePending>;

export const RegisterDeviceRequest = Type.Composite(
  [Type.Object({ id: Type.Optional(DeviceId) }), DeviceInfo],
  { additionalProperties: false },
);
export type RegisterDeviceRequest = Static<typeof RegisterDeviceRequest>;
export const UpdateDeviceRequest = DeviceInfo;
export const DeviceResponse = Type.Composite([
  Device,
  Type.Object({ pending: Type.Optional(DevicePending) }),
]);
export const DevicesResponse = Type.Object({ devices: Type.Array(Device) });
export const DevicesQuery = Type.Object({
  user: Type.Optional(
    Type.String({ minLength: 1, maxLength: 256, description: 'admins: the devices of this user' }),
  ),
});
