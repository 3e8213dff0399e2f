/**
 * A read that runs one at a time: asked for while it runs, it runs once more after (however
 * many times it was asked), so the last request always sees a read that started after it.
 */
export class CoalescedRead {
  private inflight: Promise<void> | undefined;
  private again = false;

  constructor(private readonly read: () => Promise<void>) {}

  /** Runs the read, or joins the one running (and asks for one more after it). */
  run(): Promise<void> {
    if (this.inflight) {
      this.again = true;
      return this.inflight;
    }
    this.inflight = this.read().finally(() => {
      this.inflight = undefined;
      if (this.again) {
        this.again = false;
        void this.run();
      }
    });
    return this.inflight;
  }

  /** The read running now, if any (to wait for it when closing). */
  running(): Promise<void> | undefined {
    return this.inflight;
  }
}
