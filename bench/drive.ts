// The closed-loop driver the client benchmarks share: `workers` loops each awaiting one call at a
// time; calls per second over `seconds` after a one-second warm-up.
export async function drive(workers: number, call: (i: number) => Promise<unknown>, seconds: number): Promise<number> {
  let done = 0;
  let stop = false;
  const loop = async (i: number) => { while (!stop) { await call(i); done++; } };
  const all = Array.from({ length: workers }, (_, i) => loop(i));
  await new Promise((r) => setTimeout(r, 1000));
  const d0 = done;
  const t0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const qps = ((done - d0) * 1e9) / Number(process.hrtime.bigint() - t0);
  stop = true;
  await Promise.allSettled(all);
  return qps;
}
