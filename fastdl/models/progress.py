"""Keras' progress bar for long predicts (and, later, fits)."""
import sys
import time


class ProgressBar:
    """Keras' one-line progress bar: 'step/steps ━━━━━━━━━━━━━━━━━━━━ 0s 2ms/step'."""

    def __init__(self, steps, verbose):
        self.steps, self.verbose, self.start = steps, verbose, time.monotonic()

    def update(self, step):
        if self.verbose == 0 or (self.verbose == 2 and step < self.steps):
            return
        elapsed = time.monotonic() - self.start
        width = 20
        done = width * step // self.steps
        bar = "━" * done + ("━" if done < width else "") + " " * max(0, width - done - 1)
        per_step = elapsed / step
        line = (f"{step}/{self.steps} {bar[:width]} {elapsed:.0f}s "
                f"{per_step * 1000:.0f}ms/step")
        end = "\n" if step == self.steps else ""
        sys.stdout.write(("\r" if self.verbose != 2 else "") + line + end)
        sys.stdout.flush()
