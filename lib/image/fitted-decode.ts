// The decode of ImageFolder's training images: sharp scales the encoded image straight to the
// target size (its default Lanczos-3 kernel, shrink-on-load where libvips uses it), 'cover' cutting
// the centre out, 'fill' stretching. It is one function so that a model trained on an ImageFolder
// is served with exactly the bytes it was trained on (preprocess({ fit: 'cover' }) calls it too).
// EXIF orientation is applied, as in preprocess(): a phone photo is upright in training and in
// serving alike (torchvision's loader ignores the tag; we do not copy that).
import sharp from 'sharp';

export type Fit = 'cover' | 'fill';

/** Interleaved 8-bit RGB, `height` x `width`, from encoded bytes. Throws sharp's error as is. */
export async function decodeFitted(bytes: Buffer, height: number, width: number, fit: Fit, maxPixels?: number): Promise<Buffer> {
  const { data, info } = await sharp(bytes, { failOn: 'error', ...(maxPixels !== undefined && { limitInputPixels: maxPixels }) })
    .rotate()
    .resize(width, height, { fit, position: 'centre' })
    .removeAlpha()
    .toColourspace('srgb')
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3 || info.width !== width || info.height !== height) {
    throw new Error(`got ${info.width}x${info.height} with ${info.channels} channels instead of ${width}x${height} RGB`);
  }
  return data;
}
