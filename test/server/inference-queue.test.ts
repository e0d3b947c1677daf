import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ChurnModel } from "../../src/model/runtime.js";
import { InferenceQueue, type Scored } from "../../src/server/inference-queue.js";
import { ServedModel } from "../../src/server/models.js";
import { customer } from "./helpers.js";

/**
 * A stand-in for one ONNX call: each row's "probability" is its own number and its two "contributions" are the
 * number and its negative (row-major), and every call is recorded.
 */
function recorder(fail?: (rows: readonly number[]) => boolean) {
  const calls: number[][] = [];
  const predict = async (rows: readonly number[]): Promise<Scored> => {
    calls.push([...rows]);
    if (fail?.(rows) === true) throw new Error(`call over ${rows.length} rows failed`);
    return { probabilities: Float32Array.from(rows), contributions: Float64Array.from(rows.flatMap((r) => [r, -r])) };
  };
  return { calls, predict };
}

const probs = (s: Scored): number[] => [...s.probabilities];
const contributions = (s: Scored): number[] => [...(s.contributions ?? [])];

const range = (from: number, n: number): number[] => Array.from({ length: n }, (_, i) => from + i);

describe("the inference queue", () => {
  it("scores the small requests of one turn in one call and gives each its own rows' answers", async () => {
    const { calls, predict } = recorder();
    const queue = new InferenceQueue(predict, { chunkRows: 8 });
    const answers = await Promise.all([queue.score([1]), queue.score([2, 3]), queue.score([4])]);
    expect(calls).toEqual([[1, 2, 3, 4]]);
    expect(answers.map(probs)).toEqual([[1], [2, 3], [4]]);
    expect(answers.map(contributions)).toEqual([
      [1, -1],
      [2, -2, 3, -3],
      [4, -4],
    ]);
  });

  it("scores a large request chunk by chunk into one answer in its rows' order", async () => {
    const { calls, predict } = recorder();
    const queue = new InferenceQueue(predict, { chunkRows: 8 });
    const rows = range(0, 21);
    const answer = await queue.score(rows);
    expect(probs(answer)).toEqual(rows);
    expect(contributions(answer)).toEqual(rows.flatMap((r) => [r, -r]));
    expect(calls.map((c) => c.length)).toEqual([8, 8, 5]);
  });

  it("answers a single arriving during a large request after at most one more chunk, not after the whole request", async () => {
    const { calls, predict } = recorder();
    const queue = new InferenceQueue(predict, { chunkRows: 10 });
    const order: string[] = [];
    const large = queue.score(range(0, 100)).then((p) => {
      order.push("large");
      return p;
    });
    // Wait until the large request is under way (its first chunk scored), then send singles one after another.
    while (calls.length === 0) await new Promise((r) => setImmediate(r));
    const singles: Promise<Scored>[] = [];
    for (let s = 0; s < 3; s++) {
      const chunksBefore = calls.filter((c) => c.length === 10).length;
      const single = queue.score([1000 + s]);
      singles.push(single);
      await single;
      order.push(`single ${s}`);
      // Between the single's arrival and its answer, the large request got at most one chunk.
      expect(calls.filter((c) => c.length === 10).length - chunksBefore).toBeLessThanOrEqual(1);
    }
    expect(probs(await large)).toEqual(range(0, 100));
    expect(order).toEqual(["single 0", "single 1", "single 2", "large"]);
    expect((await Promise.all(singles)).map(probs)).toEqual([[1000], [1001], [1002]]);
    // The large request still got every chunk, each a call of its own.
    expect(calls.filter((c) => c.length === 10)).toHaveLength(10);
  });

  it("keeps scoring a large request while small requests keep arriving", async () => {
    const { calls, predict } = recorder();
    const queue = new InferenceQueue(predict, { chunkRows: 10 });
    let done = false;
    const large = queue.score(range(0, 50)).then(() => {
      done = true;
    });
    let singles = 0;
    // A steady stream: a new single every turn, for as long as the large request runs.
    while (!done && singles < 1000) {
      await queue.score([singles]);
      singles++;
    }
    await large;
    expect(done).toBe(true);
    // Five chunks took about five turns, not a thousand.
    expect(singles).toBeLessThanOrEqual(10);
    expect(calls.filter((c) => c.length === 10)).toHaveLength(5);
  });

  it("fails only the requests of the call that failed", async () => {
    const { predict } = recorder((rows) => rows.includes(-1));
    const queue = new InferenceQueue(predict, { chunkRows: 4 });
    const bad = queue.score([1, -1]);
    const alsoInThatCall = queue.score([2]);
    await expect(bad).rejects.toThrow(/failed/);
    await expect(alsoInThatCall).rejects.toThrow(/failed/);
    const large = queue.score([0, 1, 2, 3, -1, 5]);
    const after = queue.score([7]);
    await expect(large).rejects.toThrow(/failed/);
    expect(probs(await after)).toEqual([7]);
    expect(probs(await queue.score(range(0, 9)))).toEqual(range(0, 9));
  });

  it("refuses a chunk size that is not a whole number of at least one row", () => {
    const { predict } = recorder();
    expect(() => new InferenceQueue(predict, { chunkRows: 0 })).toThrow(RangeError);
  });
});

describe("a served model", () => {
  let model: ChurnModel;
  beforeAll(async () => {
    model = await ChurnModel.load(inject("fixture").bundleDir);
  });
  afterAll(async () => {
    await model.close();
  });

  it("answers a single prediction sent after a 1,000-customer batch before the batch, with the same scores as alone", async () => {
    const served = new ServedModel(model, "champion", "reject");
    const row = (i: number) => served.validator.check(customer(i, { tenure_months: 1 + (i % 70) }), "");
    const rows = Array.from({ length: 1000 }, (_, i) => {
      const r = row(i);
      if (!r.ok) throw new Error(JSON.stringify(r.violations));
      return r.value;
    });
    const alone = await served.score(rows);
    const order: string[] = [];
    const batch = served.score(rows).then((p) => {
      order.push("batch");
      return p;
    });
    await new Promise((r) => setImmediate(r));
    const single = served.score([rows[7] as (typeof rows)[number]]).then((p) => {
      order.push("single");
      return p;
    });
    const [b, s] = await Promise.all([batch, single]);
    expect(order).toEqual(["single", "batch"]);
    expect(probs(b)).toEqual(probs(alone));
    expect(s.probabilities[0]).toBe(alone.probabilities[7]);
    // Explained, through its own queue: the same probabilities, and the row's contributions.
    const explained = await served.score([rows[7] as (typeof rows)[number]], true);
    expect(explained.probabilities[0]).toBe(alone.probabilities[7]);
    expect(model.explains).toBe(true);
    expect(explained.contributions?.length).toBe(model.bundle.explanations.available ? model.bundle.explanations.features.length : -1);
  });
});
