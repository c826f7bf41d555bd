import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type Engine, loadImages, startEngineIn } from './netns-docker.js';

const run = promisify(execFile);

/**
 * A real multi-node Docker Swarm on this machine: one dockerd per node, each in a network
 * namespace of the test's own (with its own data root, socket, /run and hostname), the nodes
 * linked by a veth pair. Every address below exists only inside those namespaces
 * (198.18.0.0/15 is the range set aside for test networks), so no packet reaches the machine's
 * own network, and the host's engine is left as it is.
 */
export interface SwarmNode extends Engine {
  name: string;
  netns: string;
  /** Its address on the link between the nodes (what Swarm advertises). */
  address: string;
  /** Runs a command as a process of this node's network namespace. */
  inNetns(cmd: string, ...args: string[]): Promise<string>;
}

export interface Swarm {
  /** The first is the manager (the leader); the others are workers. */
  nodes: SwarmNode[];
  stop(): Promise<void>;
}

const LINK = '198.19.255';

export async function startSwarm(tag: string, workDir: string, images: { fromCache?: Record<string, string>; fromHost?: string[] }): Promise<Swarm> {
  const names = ['node1', 'node2'];
  const netns = names.map((n) => `mc-${tag}-${n}-${process.pid}`);
  const veth = [`mc${process.pid % 100000}a`, `mc${process.pid % 100000}b`];
  const nodes: SwarmNode[] = [];
  const stop = async () => {
    for (const n of nodes.reverse()) {
      await n.docker('swarm', 'leave', '--force').catch(() => undefined);
      await n.stop().catch(() => undefined);
    }
    for (const ns of netns) await run('ip', ['netns', 'del', ns]).catch(() => undefined);
  };
  try {
    for (const ns of netns) {
      await run('ip', ['netns', 'add', ns]);
      await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    }
    await run('ip', ['link', 'add', veth[0]!, 'type', 'veth', 'peer', 'name', veth[1]!]);
    for (let i = 0; i < names.length; i++) {
      await run('ip', ['link', 'set', veth[i]!, 'netns', netns[i]!]);
      await run('ip', ['-n', netns[i]!, 'addr', 'add', `${LINK}.${i + 1}/24`, 'dev', veth[i]!]);
      await run('ip', ['-n', netns[i]!, 'link', 'set', veth[i]!, 'up']);
    }
    // No bridge or NAT of Docker's own on the nodes: overlay networks, and the gateway bridge of
    // their containers, from the test range.
    const args = ['--bridge=none', '--iptables=false', '--ip-masq=false', '--default-address-pool', 'base=198.18.0.0/17,size=24'];
    const engines = await Promise.all(names.map((name, i) => startEngineIn(netns[i]!, join(workDir, `swarm-${tag}-${name}`), args, { hostname: name })));
    engines.forEach((e, i) =>
      nodes.push({
        ...e,
        name: names[i]!,
        netns: netns[i]!,
        address: `${LINK}.${i + 1}`,
        inNetns: async (cmd, ...a) => (await run('nsenter', [`--net=/run/netns/${netns[i]}`, cmd, ...a], { maxBuffer: 16 * 1024 * 1024 })).stdout,
      }),
    );
    const [manager, ...workers] = nodes as [SwarmNode, ...SwarmNode[]];
    await manager.docker('swarm', 'init', '--advertise-addr', manager.address, '--default-addr-pool', '198.18.128.0/17', '--default-addr-pool-mask-length', '24');
    const token = await manager.docker('swarm', 'join-token', '-q', 'worker');
    for (const w of workers) await w.docker('swarm', 'join', '--advertise-addr', w.address, '--token', token, `${manager.address}:2377`);
    // The images, saved once from the host's engine, loaded into every node (no registry here).
    mkdirSync(workDir, { recursive: true });
    await Promise.all(nodes.map((n) => loadImages(n.host, images)));
    return { nodes, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
