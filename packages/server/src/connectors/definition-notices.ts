/**
 * "Connectors changed" notices between the nodes of a cluster: a node that made, changed or removed a
 * REST connector definition says so on the bus, and the others read the stored definitions at once
 * instead of at their next lease check. A lost notice only delays that to the next lease check: the
 * store holds the definitions, the notice carries none.
 */
import type { Bus } from '../bus/types.ts';

export class DefinitionNotices {
  constructor(
    private readonly bus: Bus,
    private readonly node: string,
  ) {}

  /** Tells the other nodes this node's REST definitions changed. */
  announce(): void {
    this.bus.publish({ type: 'connectors_changed', node: this.node });
  }

  /** Calls `listener` when another node says its definitions changed. */
  onChange(listener: () => void): void {
    this.bus.subscribe((message) => {
      if (message.type === 'connectors_changed' && message.node !== this.node) listener();
    });
  }
}
