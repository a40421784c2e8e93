"""A tune task that dies at a given step, as a killed tune process would (the resume tests of every medium)."""


class KilledAt:
    def __init__(self, task, step):
        self.task, self.step = task, step

    def __getattr__(self, name):
        return getattr(self.task, name)

    def loss(self, step, generator):
        if step == self.step:
            raise RuntimeError("killed")
        return self.task.loss(step, generator)
