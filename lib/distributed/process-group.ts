// torch.distributed.init_process_group for this package: a c10d process group (Gloo on CPUs, NCCL
// on GPUs) that data-parallel trainers all-reduce their gradients over. Ranks meet through a
// c10d TCPStore that rank 0 hosts at MASTER_ADDR:MASTER_PORT, exactly the env:// rendezvous that
// torchrun, Kubernetes' PyTorchJob and Slurm scripts set up.
import { DistributedError, settle } from '../errors.js';
import { native, type NativeProcessGroup } from '../native.js';
import * as v from '../validate.js';

export type DistributedBackend = 'gloo' | 'nccl';

export interface ProcessGroupOptions {
  /** 'gloo' (CPU tensors, any build) or 'nccl' (one GPU per rank, CUDA builds). Default 'gloo'. */
  backend?: DistributedBackend;
  /**
   * 'env://' (default): MASTER_ADDR and MASTER_PORT from the environment, as torchrun sets them;
   * 'tcp://host:port': the master given here.
   */
  initMethod?: string;
  /** This process's rank in 0..worldSize-1. Default: the RANK environment variable. */
  rank?: number;
  /** Number of processes in the job. Default: the WORLD_SIZE environment variable. */
  worldSize?: number;
  /**
   * Bounds the rendezvous, every collective, and how long a rank waits for a lost peer before
   * failing with a DistributedError (Gloo's own default is 30 minutes). Default 60000.
   */
  timeoutMs?: number;
}

const optionNames = ['backend', 'initMethod', 'rank', 'worldSize', 'timeoutMs'];

function fromEnvironment(name: string, what: string, env: NodeJS.ProcessEnv): number {
  const raw = env[name];
  if (raw === undefined || raw === '') {
    throw new DistributedError(`Expected the environment variable ${name} (${what}; torchrun and cluster launchers set it) or the option, but it is not set`);
  }
  if (!/^\d+$/.test(raw.trim())) throw new DistributedError(`Expected the environment variable ${name} (${what}) to be a non-negative integer but received '${raw}'`);
  return Number(raw.trim());
}

function masterFrom(initMethod: string, env: NodeJS.ProcessEnv): { masterAddr: string; masterPort: number } {
  if (initMethod === 'env://') {
    const masterAddr = env.MASTER_ADDR;
    if (!masterAddr) throw new DistributedError("Expected the environment variable MASTER_ADDR (rank 0's address) for initMethod 'env://', but it is not set");
    const masterPort = fromEnvironment('MASTER_PORT', "the port of rank 0's store", env);
    return { masterAddr, masterPort };
  }
  const match = /^tcp:\/\/(\[[^\]]+\]|[^:/]+):(\d+)\/?$/.exec(initMethod);
  if (!match) throw v.invalid("'env://' or 'tcp://host:port'", 'initMethod', initMethod);
  return { masterAddr: match[1]!.replace(/^\[|\]$/g, ''), masterPort: Number(match[2]) };
}

/** A c10d process group: this process's place in a data-parallel job. */
export class ProcessGroup {
  readonly backend: DistributedBackend;
  readonly rank: number;
  readonly worldSize: number;
  /** The rank among the processes of this machine (LOCAL_RANK; the global rank when unset). */
  readonly localRank: number;
  readonly masterAddr: string;
  readonly masterPort: number;
  readonly timeoutMs: number;
  readonly #native: NativeProcessGroup;
  #destroyed = false;

  /** @internal Use initProcessGroup(). */
  constructor(handle: NativeProcessGroup, info: Omit<ProcessGroup, 'allReduceSum' | 'barrier' | 'destroy' | 'destroyed' | 'isMain' | 'nativeHandle'>) {
    this.#native = handle;
    this.backend = info.backend;
    this.rank = info.rank;
    this.worldSize = info.worldSize;
    this.localRank = info.localRank;
    this.masterAddr = info.masterAddr;
    this.masterPort = info.masterPort;
    this.timeoutMs = info.timeoutMs;
  }

  /** Rank 0: the one that writes checkpoints and logs. */
  get isMain(): boolean {
    return this.rank === 0;
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }

  /** Element-wise sums over every rank (each rank gets them), in float64. Collective. */
  async allReduceSum(values: readonly number[]): Promise<number[]> {
    if (!Array.isArray(values) || !values.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      throw v.invalid('an array of finite numbers', 'values', values);
    }
    const sums = await settle(() => this.#native.allReduceSum(Float64Array.from(values)), new Error());
    return Array.from(sums);
  }

  /** Resolves once every rank has called it. Collective. */
  async barrier(): Promise<void> {
    await settle(() => this.#native.barrier(), new Error());
  }

  /** Leaves the job: the backend and the store connection are released. Idempotent. */
  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    if (defaultGroup === this) defaultGroup = null;
    await settle(() => this.#native.destroy(), new Error());
  }

  /** @internal The addon's group, for trainers. */
  get nativeHandle(): NativeProcessGroup {
    if (this.#destroyed) throw new DistributedError('The process group was destroyed; data-parallel training needs a live one');
    return this.#native;
  }
}

let defaultGroup: ProcessGroup | null = null;

/** The backends this build of the addon has: 'gloo' wherever c10d's Gloo headers were found, 'nccl' in CUDA builds with NCCL. */
export function distributedBackends(): DistributedBackend[] {
  return native.distributedBackends();
}

/**
 * Joins a data-parallel job and resolves once every rank has joined (torch.distributed's
 * init_process_group). The first group becomes the default one (defaultProcessGroup()).
 * Rejects with a DistributedError that says what is wrong when a rank does not come, comes twice,
 * the master cannot be reached or its port is taken, within `timeoutMs`.
 */
export async function initProcessGroup(options: ProcessGroupOptions = {}, env: NodeJS.ProcessEnv = process.env): Promise<ProcessGroup> {
  v.knownKeys('initProcessGroup', v.plainObject('options', options), optionNames);
  const backend = v.oneOf('backend', options.backend ?? 'gloo', ['gloo', 'nccl'] as const);
  const initMethod = options.initMethod ?? 'env://';
  if (typeof initMethod !== 'string') throw v.invalid("'env://' or 'tcp://host:port'", 'initMethod', initMethod);
  const { masterAddr, masterPort } = masterFrom(initMethod, env);
  if (!Number.isInteger(masterPort) || masterPort < 1 || masterPort > 65535) throw v.invalid('a port in 1..65535', 'MASTER_PORT', masterPort);
  const worldSize = options.worldSize === undefined ? fromEnvironment('WORLD_SIZE', 'the number of processes', env) : v.positiveInteger('worldSize', options.worldSize);
  if (worldSize < 1) throw v.invalid('a world size of at least 1', 'worldSize', worldSize);
  const rank = options.rank === undefined ? fromEnvironment('RANK', "this process's rank", env) : v.nonNegativeInteger('rank', options.rank);
  if (rank >= worldSize) throw v.invalid(`a rank in 0..${worldSize - 1} (world size ${worldSize})`, 'rank', rank);
  const localRank = env.LOCAL_RANK !== undefined && env.LOCAL_RANK !== '' ? fromEnvironment('LOCAL_RANK', "this process's rank on its machine", env) : rank;
  const timeoutMs = v.positiveInteger('timeoutMs', options.timeoutMs ?? 60_000);
  if (!distributedBackends().includes(backend)) {
    throw new DistributedError(
      `Expected a backend this build has (${distributedBackends().join(', ') || 'none'}) but received '${backend}'` +
        (backend === 'nccl' ? ': NCCL needs a CUDA LibTorch' : ": install Gloo's headers (Debian: libgloo-dev) and rebuild"),
    );
  }
  const trace = new Error();
  const handle = await settle(() => native.createProcessGroup({ backend, masterAddr, masterPort, rank, worldSize, timeoutMs }), trace);
  const group = new ProcessGroup(handle, { backend, rank, worldSize, localRank, masterAddr, masterPort, timeoutMs });
  defaultGroup ??= group;
  return group;
}

/** The first group initProcessGroup() created and that is not destroyed yet, or null. */
export function defaultProcessGroup(): ProcessGroup | null {
  return defaultGroup;
}

/** Destroys `group` (default: the default group). */
export async function destroyProcessGroup(group: ProcessGroup | null = defaultGroup): Promise<void> {
  await group?.destroy();
}
