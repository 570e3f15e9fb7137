// Learning-rate schedules as pure functions of the iteration: lrAt(schedule, baseLr, i) is the lr
// that PyTorch's scheduler, stepped once per iteration, leaves in optimizer.param_groups[0]['lr']
// for the optimizer step of iteration i (i = 0 is the first step, before any scheduler.step()).
//
// The PyTorch equivalents (those of torchvision's references/classification/train.py):
//   constant     no scheduler
//   step         StepLR(step_size=stepSize, gamma=gamma)
//   multistep    MultiStepLR(milestones=milestones, gamma=gamma)
//   cosine       CosineAnnealingLR(T_max=totalIters - warmupIters, eta_min=minLr)
//   warmupIters  w > 0: SequentialLR([LinearLR(start_factor=warmupStartFactor, total_iters=w), main],
//                milestones=[w]); for 'constant', LinearLR alone.
//
// What PyTorch 1.13 does at the warmup boundary, and so what this does:
//   - iterations 0 .. w-1 belong to LinearLR: baseLr * (f + (1 - f) * i / w), starting at baseLr * f;
//   - at iteration w SequentialLR calls main.step(0), which sets the main scheduler's epoch to 0
//     and takes its closed form, i.e. exactly baseLr (for cosine: minLr + (baseLr - minLr) * 2 / 2);
//   - from then on the main scheduler counts its own epochs, iteration - w. So stepSize and
//     milestones count iterations AFTER the warmup (milestones [32000, 48000] with 500 warmup
//     iterations drop the lr at iterations 32500 and 48500), while the cosine's totalIters counts
//     the whole run, warmup included, because T_max is totalIters - warmupIters.
//   - warmupIters 0 means the main scheduler alone. (SequentialLR with milestones [0] never calls
//     step(0): its first step() keeps LinearLR's baseLr * f, and the whole main schedule then runs
//     scaled by f and one iteration late. Nobody wants that, so 0 is not passed on to it.)
// Past totalIters the cosine goes on as PyTorch's does: it reaches minLr at iteration totalIters
// and then rises again (period 2 * (totalIters - warmupIters)).
//
// PyTorch updates most of these recursively (lr *= ratio each step); the closed forms here agree
// with it to rounding. Bit for bit: constant, multistep (one multiplication per milestone passed,
// as PyTorch does) and step where gamma ** n rounds like n multiplications (gamma 0.5, or 0.1 for
// a few decays). Within 2e-15 relative: other step gammas (0.97 every iteration) and the warmup.
// The cosine: within PyTorch's own accumulated rounding, under 1e-13 relative at every iteration
// of a 64000-iteration cosine. test/schedule.test.ts checks every iteration against PyTorch.
import { invalid, knownKeys, nonNegativeInteger, oneOf, plainObject, positiveInteger } from '../validate.js';

/** Linear warmup, accepted by every schedule type. */
export interface WarmupOptions {
  /** Iterations of linear warmup before the schedule proper (LinearLR's total_iters). Default 0: none. */
  warmupIters?: number;
  /**
   * The lr of iteration 0 as a fraction of baseLr, in (0, 1] (LinearLR's start_factor). Default 1/3,
   * LinearLR's own default (torchvision's training recipes pass 0.01). Ignored when warmupIters is 0.
   */
  warmupStartFactor?: number;
}

export type ScheduleOptions =
  | ({ type: 'constant' } & WarmupOptions)
  | ({
      type: 'step';
      /** Multiply the lr by gamma every stepSize iterations (counted after the warmup). */
      stepSize: number;
      /** Default 0.1. */
      gamma?: number;
    } & WarmupOptions)
  | ({
      type: 'multistep';
      /** Strictly increasing positive iterations (counted after the warmup) at which lr *= gamma. */
      milestones: number[];
      /** Default 0.1. */
      gamma?: number;
    } & WarmupOptions)
  | ({
      type: 'cosine';
      /** Length of the whole run, warmup included: the cosine lasts totalIters - warmupIters. */
      totalIters: number;
      /** The lr the cosine ends at (eta_min, an lr, not a fraction of baseLr). Default 0. */
      minLr?: number;
    } & WarmupOptions);

export type ScheduleType = ScheduleOptions['type'];

interface ResolvedWarmup {
  readonly warmupIters: number;
  readonly warmupStartFactor: number;
}

/** Options with every default filled in; frozen. Itself valid ScheduleOptions (JSON round trips). */
export type ResolvedSchedule =
  | ({ readonly type: 'constant' } & ResolvedWarmup)
  | ({ readonly type: 'step'; readonly stepSize: number; readonly gamma: number } & ResolvedWarmup)
  | ({ readonly type: 'multistep'; readonly milestones: readonly number[]; readonly gamma: number } & ResolvedWarmup)
  | ({ readonly type: 'cosine'; readonly totalIters: number; readonly minLr: number } & ResolvedWarmup);

export const scheduleTypes: readonly ScheduleType[] = Object.freeze(['constant', 'step', 'multistep', 'cosine']);

const warmupKeys = ['warmupIters', 'warmupStartFactor'] as const;
const keysOf: Record<ScheduleType, readonly string[]> = {
  constant: ['type', ...warmupKeys],
  step: ['type', 'stepSize', 'gamma', ...warmupKeys],
  multistep: ['type', 'milestones', 'gamma', ...warmupKeys],
  cosine: ['type', 'totalIters', 'minLr', ...warmupKeys],
};

/** PyTorch LinearLR's default start_factor. */
const defaultWarmupStartFactor = 1 / 3;
const defaultGamma = 0.1;

function positiveNumber(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw invalid('positive number', name, value);
  return value;
}

function nonNegativeNumber(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw invalid('non-negative number', name, value);
  }
  return value;
}

function fraction(name: string, value: unknown): number {
  if (typeof value !== 'number' || !(value > 0 && value <= 1)) throw invalid('number in (0, 1]', name, value);
  return value;
}

function milestoneList(value: unknown): number[] {
  if (!Array.isArray(value)) throw invalid('an array of increasing positive integers', 'milestones', value);
  const milestones: number[] = [];
  for (const [i, milestone] of value.entries()) {
    const name = `milestones[${i}]`;
    positiveInteger(name, milestone);
    const previous = milestones[i - 1];
    if (previous !== undefined && milestone <= previous) {
      throw invalid(`integer greater than milestones[${i - 1}] (${previous})`, name, milestone);
    }
    milestones.push(milestone);
  }
  return milestones;
}

const resolvedSchedules = new WeakSet<object>();

/**
 * Validates schedule options and fills in the defaults. Throws InvalidArgumentError naming the
 * option, what was expected and what came. Idempotent: a ResolvedSchedule resolves to an equal one.
 */
export function resolveSchedule(options: unknown): ResolvedSchedule {
  const o = plainObject('schedule', options);
  const type = oneOf('type', o.type, scheduleTypes);
  knownKeys(`${type} schedule`, o, keysOf[type]);
  const warmupIters = o.warmupIters === undefined ? 0 : nonNegativeInteger('warmupIters', o.warmupIters);
  const warmupStartFactor =
    o.warmupStartFactor === undefined ? defaultWarmupStartFactor : fraction('warmupStartFactor', o.warmupStartFactor);
  const gamma = (): number => (o.gamma === undefined ? defaultGamma : positiveNumber('gamma', o.gamma));
  let schedule: ResolvedSchedule;
  switch (type) {
    case 'constant':
      schedule = { type, warmupIters, warmupStartFactor };
      break;
    case 'step': {
      const stepSize = positiveInteger('stepSize', o.stepSize);
      schedule = { type, stepSize, gamma: gamma(), warmupIters, warmupStartFactor };
      break;
    }
    case 'multistep': {
      const milestones = Object.freeze(milestoneList(o.milestones));
      schedule = { type, milestones, gamma: gamma(), warmupIters, warmupStartFactor };
      break;
    }
    case 'cosine': {
      const totalIters = positiveInteger('totalIters', o.totalIters);
      if (totalIters <= warmupIters) {
        throw invalid(`integer greater than warmupIters (${warmupIters})`, 'totalIters', totalIters);
      }
      const minLr = o.minLr === undefined ? 0 : nonNegativeNumber('minLr', o.minLr);
      schedule = { type, totalIters, minLr, warmupIters, warmupStartFactor };
      break;
    }
  }
  Object.freeze(schedule);
  resolvedSchedules.add(schedule);
  return schedule;
}

/**
 * The learning rate for the optimizer step of `iteration` (0, 1, 2, ...) when training starts at
 * `baseLr`: what PyTorch's equivalent scheduler (see the top of this file), stepped once after
 * every optimizer step, has set by then. Pure: depends on its arguments only. Also takes unresolved
 * options (it resolves them, so it throws what resolveSchedule throws).
 */
export function lrAt(schedule: ResolvedSchedule, baseLr: number, iteration: number): number {
  const s = resolvedSchedules.has(schedule as object) ? schedule : resolveSchedule(schedule);
  nonNegativeNumber('baseLr', baseLr);
  nonNegativeInteger('iteration', iteration);
  const { warmupIters, warmupStartFactor } = s;
  if (iteration < warmupIters) {
    return baseLr * (warmupStartFactor + ((1 - warmupStartFactor) * iteration) / warmupIters);
  }
  // The main scheduler's own epoch: SequentialLR restarts it at 0 at the end of the warmup.
  const epoch = iteration - warmupIters;
  switch (s.type) {
    case 'constant':
      return baseLr;
    case 'step':
      return baseLr * s.gamma ** Math.floor(epoch / s.stepSize);
    case 'multistep': {
      // One multiplication per milestone passed, as MultiStepLR does it: equal bit for bit.
      let lr = baseLr;
      for (const milestone of s.milestones) {
        if (milestone > epoch) break;
        lr *= s.gamma;
      }
      return lr;
    }
    case 'cosine': {
      // CosineAnnealingLR's closed form, in the order its _get_closed_form_lr writes it.
      const tMax = s.totalIters - warmupIters;
      return s.minLr + ((baseLr - s.minLr) * (1 + Math.cos((Math.PI * epoch) / tMax))) / 2;
    }
  }
}
