import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type Engine, loadImages, startEngineIn } from './netns-docker.js';

const run = promisify(execFile);

/**
 * A real multi-node Docker Swarm on this machine: one dockerd per node, each in a network
 * namespace of the test's own (with its own data root, socket, /run and hostname), every node
 * linked by a veth pair to a bridge in a namespace of its own (the switch between them). Each
 * engine also listens at /var/run/docker.sock inside its own /run, so a bind mount of that path
 * gives a container its own node's engine. Every address below exists only inside those namespaces
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
  /** The first is the leader; the others join as managers or workers. */
  nodes: SwarmNode[];
  stop(): Promise<void>;
}

const LINK = '198.19.255';

export async function startSwarm(
  tag: string,
  workDir: string,
  images: { fromCache?: Record<string, string>; fromHost?: string[] },
  o: { nodes?: number; join?: 'manager' | 'worker' } = {},
): Promise<Swarm> {
  const names = Array.from({ length: o.nodes ?? 2 }, (_, i) => `node${i + 1}`);
  const hub = `mc-${tag}-hub-${process.pid}`;
  const netns = names.map((n) => `mc-${tag}-${n}-${process.pid}`);
  const veth = names.map((_, i) => [`mc${process.pid % 10000}n${i}`, `mc${process.pid % 10000}h${i}`] as const);
  const nodes: SwarmNode[] = [];
  const stop = async () => {
    for (const n of [...nodes].reverse()) {
      await n.docker('swarm', 'leave', '--force').catch(() => undefined);
      await n.stop().catch(() => undefined);
    }
    for (const ns of [...netns, hub]) await run('ip', ['netns', 'del', ns]).catch(() => undefined);
  };
  try {
    for (const ns of [hub, ...netns]) {
      await run('ip', ['netns', 'add', ns]);
      await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    }
    await run('ip', ['-n', hub, 'link', 'add', 'sw0', 'type', 'bridge']);
    await run('ip', ['-n', hub, 'link', 'set', 'sw0', 'up']);
    for (let i = 0; i < names.length; i++) {
      const [nodeEnd, hubEnd] = veth[i]!;
      await run('ip', ['link', 'add', nodeEnd, 'type', 'veth', 'peer', 'name', hubEnd]);
      await run('ip', ['link', 'set', nodeEnd, 'netns', netns[i]!]);
      await run('ip', ['link', 'set', hubEnd, 'netns', hub]);
      await run('ip', ['-n', hub, 'link', 'set', hubEnd, 'master', 'sw0', 'up']);
      await run('ip', ['-n', netns[i]!, 'addr', 'add', `${LINK}.${i + 1}/24`, 'dev', nodeEnd]);
      await run('ip', ['-n', netns[i]!, 'link', 'set', nodeEnd, 'up']);
    }
    // No bridge or NAT of Docker's own on the nodes: overlay networks, and the gateway bridge of
    // their containers, from the test range.
    const args = [
      '--bridge=none',
      '--iptables=false',
      '--ip-masq=false',
      '--default-address-pool',
      'base=198.18.0.0/17,size=24',
      '-H',
      'unix:///var/run/docker.sock',
    ];
    const engines = await Promise.all(
      names.map((name, i) => startEngineIn(netns[i]!, join(workDir, `swarm-${tag}-${name}`), args, { hostname: name })),
    );
    for (const [i, e] of engines.entries())
      nodes.push({
        ...e,
        name: names[i]!,
        netns: netns[i]!,
        address: `${LINK}.${i + 1}`,
        inNetns: async (cmd, ...a) =>
          (await run('nsenter', [`--net=/run/netns/${netns[i]}`, cmd, ...a], { maxBuffer: 16 * 1024 * 1024 })).stdout,
      });
    const [leader, ...others] = nodes as [SwarmNode, ...SwarmNode[]];
    await leader.docker(
      'swarm',
      'init',
      '--advertise-addr',
      leader.address,
      '--default-addr-pool',
      '198.18.128.0/17',
      '--default-addr-pool-mask-length',
      '24',
    );
    const token = await leader.docker('swarm', 'join-token', '-q', o.join ?? 'worker');
    for (const n of others)
      await n.docker('swarm', 'join', '--advertise-addr', n.address, '--token', token, `${leader.address}:2377`);
    // The images, saved once from the host's engine, loaded into every node (no registry here).
    mkdirSync(workDir, { recursive: true });
    await Promise.all(nodes.map((n) => loadImages(n.host, images)));
    return { nodes, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
