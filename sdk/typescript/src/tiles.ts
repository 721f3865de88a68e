// Receipts from the log's public C2SP tlog-tiles (c2sp.org/tlog-tiles).
//
// Tile (L, N) holds the hashes of the perfect subtrees of 256**L leaves number
// N*256 onwards; the rightmost tile of a level is partial (W < 256 hashes). Any
// node of the tree is 2**r (r < 8) consecutive hashes of one tile, so a proof reads
// O(log n) tiles. A receipt built here is checked with verifyReceipt against the
// signed checkpoint: a wrong tile leads to another root and fails.

import { concat, sha256, toBase64, type Bytes } from "./encoding.js";
import type { AuditReceipt } from "./types.js";

export const TILE_WIDTH = 256;
const HASH_SIZE = 32;

export type TileKey = readonly [level: number, index: number, width: number];

/** tile/<L>/<N>[.p/<W>], N in 3-digit groups, all but the last prefixed with x. */
export function tilePath(level: number, index: number, width = TILE_WIDTH): string {
  const groups = [String(index % 1000).padStart(3, "0")];
  for (let rest = Math.floor(index / 1000); rest > 0; rest = Math.floor(rest / 1000)) {
    groups.push(`x${String(rest % 1000).padStart(3, "0")}`);
  }
  const path = `tile/${level}/${groups.reverse().join("/")}`;
  return width === TILE_WIDTH ? path : `${path}.p/${width}`;
}

const node = (l: Bytes, r: Bytes): Promise<Bytes> => sha256(concat(new Uint8Array([1]), l, r));

/** The tree of `size` leaves, read from tiles given by `fetch(level, index, width)`. */
class TiledTree {
  constructor(
    readonly size: number,
    private readonly fetch: (key: TileKey) => Bytes,
  ) {}

  private tile(level: number, index: number): Bytes {
    const complete = Math.floor(this.size / 256 ** level);
    const width = Math.min(TILE_WIDTH, complete - index * TILE_WIDTH);
    if (width < 1) throw new RangeError(`tile ${level}/${index} is beyond the tree`);
    const data = this.fetch([level, index, width]);
    if (data.length !== width * HASH_SIZE) throw new RangeError(`tile ${level}/${index} is not ${width} hashes long`);
    return data;
  }

  async perfect(start: number, height: number): Promise<Bytes> {
    const level = Math.floor(height / 8);
    const count = 2 ** (height % 8);
    const first = Math.floor(start / 256 ** level);
    const data = this.tile(level, Math.floor(first / TILE_WIDTH));
    const offset = first % TILE_WIDTH;
    if ((offset + count) * HASH_SIZE > data.length) throw new RangeError("the tiles do not hold this subtree");
    let hashes: Bytes[] = [];
    for (let i = 0; i < count; i++) hashes.push(data.slice((offset + i) * HASH_SIZE, (offset + i + 1) * HASH_SIZE));
    while (hashes.length > 1) {
      const next: Bytes[] = [];
      for (let i = 0; i < hashes.length; i += 2) next.push(await node(hashes[i]!, hashes[i + 1]!));
      hashes = next;
    }
    return hashes[0]!;
  }

  async rangeHash(start: number, end: number): Promise<Bytes> {
    const pieces: Bytes[] = [];
    while (start < end) {
      let height = Math.floor(Math.log2(end - start));
      while (2 ** height > end - start) height--; // guard against rounding
      while (start % 2 ** height !== 0) height--;
      pieces.push(await this.perfect(start, height));
      start += 2 ** height;
    }
    let root = pieces[pieces.length - 1]!;
    for (let i = pieces.length - 2; i >= 0; i--) root = await node(pieces[i]!, root);
    return root;
  }
}

async function inclusionProof(index: number, tree: TiledTree): Promise<Bytes[]> {
  const proof: Bytes[] = [];
  let start = 0;
  let end = tree.size;
  while (end - start > 1) {
    let split = 1;
    while (split * 2 < end - start) split *= 2; // largest power of two below the size
    if (index < start + split) {
      proof.push(await tree.rangeHash(start + split, end));
      end = start + split;
    } else {
      proof.push(await tree.rangeHash(start, start + split));
      start += split;
    }
  }
  return proof.reverse();
}

/** The tree size a checkpoint note states (unverified: verifyReceipt checks the note). */
export function checkpointSize(note: string): number {
  const line = note.split("\n")[1] ?? "";
  if (!/^\d+$/.test(line) || !Number.isSafeInteger(Number(line))) throw new RangeError("not a checkpoint note");
  return Number(line);
}

/** The tiles the proof of `index` in a tree of `size` reads (they depend on the numbers only). */
export async function requiredTiles(index: number, size: number): Promise<TileKey[]> {
  if (!(Number.isSafeInteger(index) && index >= 0 && index < size)) {
    throw new RangeError(`entry ${index} is not in a checkpoint of size ${size} (yet)`);
  }
  const seen = new Map<string, TileKey>();
  await inclusionProof(index, new TiledTree(size, (key) => {
    seen.set(key.join("/"), key);
    return new Uint8Array(key[2] * HASH_SIZE);
  }));
  return [...seen.values()];
}

/** A receipt {index, checkpoint, inclusionProof} from fetched tiles, for verifyReceipt. */
export async function receiptFromTiles(
  index: number,
  note: string,
  tiles: ReadonlyMap<string, Uint8Array>,
): Promise<AuditReceipt> {
  const tree = new TiledTree(checkpointSize(note), (key) => {
    const data = tiles.get(key.join("/"));
    if (data === undefined) throw new RangeError(`tile ${tilePath(...key)} was not fetched`);
    return new Uint8Array(data);
  });
  const proof = await inclusionProof(index, tree);
  return { index, checkpoint: note, inclusionProof: proof.map(toBase64) };
}
