// Writes a whole file or nothing: the text goes to a temporary file in the same folder (the same
// file system, so the rename is atomic), then replaces `path`. A reader, or a process killed half
// way, sees the old file or the new one, never a part.
import { rename, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export async function writeFileAtomic(path: string, text: string): Promise<void> {
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  try {
    await writeFile(temporary, text);
    await rename(temporary, path);
  } catch (error) {
    await unlink(temporary).catch(() => undefined);
    throw error;
  }
}
