/** Runs async jobs one at a time, in the order they were queued (one model, one generation at a time). */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();
  private waiting = 0;

  /** Jobs queued or running. */
  get size(): number {
    return this.waiting;
  }

  /** Queues `job`; resolves or rejects with its result once every earlier job has settled. */
  run<T>(job: () => Promise<T>): Promise<T> {
    this.waiting++;
    const p = this.tail.then(job).finally(() => {
      this.waiting--;
    });
    this.tail = p.catch(() => undefined);
    return p;
  }
}
