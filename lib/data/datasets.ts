// The named data sets, each loading into an ImageDataset with its classes and the normalisation
// statistics commonly used with it (computed on its training split).
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import * as v from '../validate.js';
import { cifarFiles, readCifar, type CifarLabels, type CifarSplit } from './cifar.js';
import { ImageDataset } from './dataset.js';
import { DataError, malformed } from './errors.js';
import { findFile } from './files.js';
import { readIdxImages, readIdxLabels } from './idx.js';
import { imageExtensions, readImageFolder, type ResizeMode } from './image-folder.js';

export type Split = 'train' | 'test';
const splits = ['train', 'test'] as const;

export interface IdxLoadOptions {
  split?: Split;
  root?: string;
}

/** Reads one split of an MNIST-style data set: the IDX pair, plain or .gz, looked for in root,
 * root/raw and root/<Name>/raw (torchvision's download layout). */
async function loadIdx(
  name: string,
  options: IdxLoadOptions,
  defaults: { root?: string; classes: readonly string[]; mean: number; std: number },
): Promise<ImageDataset> {
  const o = v.plainObject('options', options);
  v.knownKeys(`${name}.load`, o, ['split', 'root']);
  const split = o.split === undefined ? 'train' : v.oneOf('split', o.split, splits);
  const root = o.root ?? defaults.root;
  if (typeof root !== 'string' || root === '') throw v.invalid('a folder path', 'root', root);
  const dirs = [root, join(root, 'raw'), join(root, name, 'raw')];
  const prefix = split === 'train' ? 'train' : 't10k';
  const find = (base: string) => findFile(dirs, [base, `${base}.gz`], `the ${name} ${split} file '${base}'`);
  // One after the other, so that when both are missing the error names the images file, always.
  const imagesFile = await find(`${prefix}-images-idx3-ubyte`);
  const labelsFile = await find(`${prefix}-labels-idx1-ubyte`);
  const [images, labels] = await Promise.all([readIdxImages(imagesFile), readIdxLabels(labelsFile)]);
  const [n, rows, cols] = images.shape as [number, number, number];
  if (labels.shape[0] !== n) {
    throw new DataError(`'${imagesFile}' holds ${n} images but '${labelsFile}' holds ${labels.shape[0]} labels`, { file: labelsFile });
  }
  const bad = labels.data.findIndex((label) => label >= defaults.classes.length);
  if (bad >= 0) {
    throw malformed(labelsFile, 8 + bad, `label ${labels.data[bad]} of image ${bad} is not in 0..${defaults.classes.length - 1}`);
  }
  const pixels = new Uint8Array(new SharedArrayBuffer(images.data.length));
  pixels.set(images.data);
  const labelArray = new Int32Array(new SharedArrayBuffer(n * 4));
  labelArray.set(labels.data);
  return new ImageDataset({ pixels, shape: [n, 1, rows, cols], labels: labelArray, classes: defaults.classes, mean: [defaults.mean], std: [defaults.std] });
}

export const FashionMNIST = {
  classes: ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'] as const,
  mean: [0.286] as const,
  std: [0.353] as const,
  /** Debian's fashion-mnist package puts the four .gz files here. */
  defaultRoot: '/usr/share/datasets/fashion-mnist',
  /** 60000 (train) or 10000 (test) 1 x 28 x 28 images. */
  load(options: IdxLoadOptions = {}): Promise<ImageDataset> {
    return loadIdx('FashionMNIST', options, { root: FashionMNIST.defaultRoot, classes: FashionMNIST.classes, mean: 0.286, std: 0.353 });
  },
};

export const MNIST = {
  classes: ['0 - zero', '1 - one', '2 - two', '3 - three', '4 - four', '5 - five', '6 - six', '7 - seven', '8 - eight', '9 - nine'] as const,
  mean: [0.1307] as const,
  std: [0.3081] as const,
  load(options: IdxLoadOptions & { root: string }): Promise<ImageDataset> {
    return loadIdx('MNIST', options, { classes: MNIST.classes, mean: 0.1307, std: 0.3081 });
  },
};

export interface CifarLoadOptions {
  /** The extracted folder (cifar-10-batches-bin / cifar-100-binary) or the folder holding it. */
  root: string;
  split?: CifarSplit;
}

async function loadCifar(name: 'CIFAR10' | 'CIFAR100', options: unknown, classes: readonly string[], mean: number[], std: number[], labels: CifarLabels): Promise<ImageDataset> {
  const o = v.plainObject('options', options);
  const split = o.split === undefined ? 'train' : v.oneOf('split', o.split, splits);
  if (typeof o.root !== 'string' || o.root === '') throw v.invalid('a folder path', 'root', o.root);
  const variant = name === 'CIFAR10' ? 'cifar10' : 'cifar100';
  const data = await readCifar(await cifarFiles(o.root, variant, split), variant, labels);
  return new ImageDataset({ pixels: data.pixels, shape: [data.count, 3, 32, 32], labels: data.labels, classes, mean, std });
}

export const CIFAR10 = {
  classes: ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'] as const,
  mean: [0.4914, 0.4822, 0.4465] as const,
  std: [0.247, 0.2435, 0.2616] as const,
  /** data_batch_1..5.bin (train, 50000) or test_batch.bin (test, 10000). */
  async load(options: CifarLoadOptions): Promise<ImageDataset> {
    v.knownKeys('CIFAR10.load', v.plainObject('options', options), ['root', 'split']);
    return loadCifar('CIFAR10', options, CIFAR10.classes, [...CIFAR10.mean], [...CIFAR10.std], 'fine');
  },
};

const cifar100Fine =
  'apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly camel can castle caterpillar cattle ' +
  'chair chimpanzee clock cloud cockroach couch crab crocodile cup dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo keyboard ' +
  'lamp lawn_mower leopard lion lizard lobster man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree pear pickup_truck pine_tree ' +
  'plain plate poppy porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk skyscraper snail snake spider ' +
  'squirrel streetcar sunflower sweet_pepper table tank telephone television tiger tractor train trout tulip turtle wardrobe whale willow_tree wolf woman worm';
const cifar100Coarse =
  'aquatic_mammals fish flowers food_containers fruit_and_vegetables household_electrical_devices household_furniture insects large_carnivores ' +
  'large_man-made_outdoor_things large_natural_outdoor_scenes large_omnivores_and_herbivores medium_mammals non-insect_invertebrates people reptiles ' +
  'small_mammals trees vehicles_1 vehicles_2';

export const CIFAR100 = {
  fineClasses: Object.freeze(cifar100Fine.split(' ')),
  coarseClasses: Object.freeze(cifar100Coarse.split(' ')),
  mean: [0.5071, 0.4865, 0.4409] as const,
  std: [0.2673, 0.2564, 0.2762] as const,
  /** train.bin (50000) or test.bin (10000); `labels` picks the 100 fine (default) or 20 coarse classes. */
  async load(options: CifarLoadOptions & { labels?: CifarLabels }): Promise<ImageDataset> {
    const o = v.plainObject('options', options);
    v.knownKeys('CIFAR100.load', o, ['root', 'split', 'labels']);
    const labels = o.labels === undefined ? 'fine' : v.oneOf('labels', o.labels, ['fine', 'coarse'] as const);
    const classes = labels === 'fine' ? CIFAR100.fineClasses : CIFAR100.coarseClasses;
    return loadCifar('CIFAR100', options, classes, [...CIFAR100.mean], [...CIFAR100.std], labels);
  },
};

export interface ImageFolderLoadOptions {
  root: string;
  /** Output size: a number for square images, or [height, width]. */
  size: number | [number, number];
  /** 'crop' (default): shorter side to size, then centre crop; 'stretch': exact resize. */
  resize?: ResizeMode;
  /** File extensions to read (default: imageExtensions). */
  extensions?: readonly string[];
  /** Images decoded at once (default: the machine's cores). */
  concurrency?: number;
  /** Normalisation statistics; default: computed from the loaded pixels. For ImageNet-trained
   * weights pass ImageFolder.imagenetMean / imagenetStd. */
  mean?: readonly number[];
  std?: readonly number[];
}

export const ImageFolder = {
  imagenetMean: [0.485, 0.456, 0.406] as const,
  imagenetStd: [0.229, 0.224, 0.225] as const,
  /** Decodes every image under root/<class>/ into memory, 3 x height x width each. */
  async load(options: ImageFolderLoadOptions): Promise<ImageDataset> {
    const o = v.plainObject('options', options);
    v.knownKeys('ImageFolder.load', o, ['root', 'size', 'resize', 'extensions', 'concurrency', 'mean', 'std']);
    if (typeof o.root !== 'string' || o.root === '') throw v.invalid('a folder path', 'root', o.root);
    const size = o.size;
    const [height, width] =
      Array.isArray(size) && size.length === 2
        ? [v.positiveInteger('size[0]', size[0]), v.positiveInteger('size[1]', size[1])]
        : typeof size === 'number'
          ? [v.positiveInteger('size', size), size]
          : (() => { throw v.invalid('a positive integer or [height, width]', 'size', size); })();
    const resize = o.resize === undefined ? 'crop' : v.oneOf('resize', o.resize, ['crop', 'stretch'] as const);
    const extensions = o.extensions ?? imageExtensions;
    if (!Array.isArray(extensions) || !extensions.every((e) => typeof e === 'string' && e.startsWith('.'))) {
      throw v.invalid("an array of extensions such as '.png'", 'extensions', extensions);
    }
    const concurrency = o.concurrency === undefined ? availableParallelism() : v.positiveInteger('concurrency', o.concurrency);
    if ((o.mean === undefined) !== (o.std === undefined)) throw v.invalid('both mean and std, or neither', 'mean', o.mean);
    const data = await readImageFolder(o.root, { height, width, resize, extensions, concurrency });
    return new ImageDataset({
      pixels: data.pixels,
      shape: [data.samples.length, 3, height, width],
      labels: data.labels,
      classes: data.classes,
      sources: data.samples.map((s) => s.path),
      ...(o.mean === undefined ? {} : { mean: o.mean as number[], std: o.std as number[] }),
    });
  },
};
