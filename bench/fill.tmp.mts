import { FileStorage } from '../packages/client/src/index.ts';

const path = '/tmp/bench-open.log';
const s = new FileStorage(path);
await s.load();
await s.loadReplica(JSON.stringify(['key', 'bench-user']));
await s.writeReplica(JSON.stringify(['key', 'bench-user']), {
  records: [],
  forget: [],
  channels: [{ channel: 'records:items', cursor: 100000, usedAt: 1 }],
  dropChannels: [],
});
for (let i = 0; i < 100000; i += 2000)
  await s.writeReplica(JSON.stringify(['key', 'bench-user']), {
    records: Array.from({ length: 2000 }, (_, k) => ({
      collection: 'items',
      id: `i${String(i + k).padStart(6, '0')}`,
      data: {
        sku: `sku-${i + k}`,
        name: `Item number ${i + k}`,
        qty: (i + k) % 97,
        price: 1.5,
        locationId: 'wh-1',
      },
      version: 1,
      seq: i + k,
    })),
    forget: [],
    channels: [],
    dropChannels: [],
  });
await s.close();
