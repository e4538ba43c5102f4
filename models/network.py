"""`kind = "torch.network"`: a network function of the user's, trained by hpsearch's Torch
trainer (models/torch_models.py: TorchNetwork)."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpsearch.models.constraints import AnyValue
from hpsearch.models.custom import CustomEntry
from hpsearch.models.custom import CustomModelError
from hpsearch.models.custom import target_problem
from hpsearch.models.lazy import import_object


@dataclass(frozen=True)
class NetworkEntry:
    """`kind = "torch.network"`: a network function of the user's, `function(input_shape,
    n_classes, **its_arguments) -> torch.nn.Module`, named by `network` (`module:function` or
    `/absolute/path/file.py:function`) and trained by hpsearch's Torch trainer. The function's
    own arguments are fixed or searched like any other."""

    network: str
    user_code = True  # a KindEntry (models/protocol.py) whose code is the user's

    @property
    def source(self) -> CustomEntry:
        """The function's module and file: the same loading as a class of the user's."""
        return CustomEntry(self.network)

    def function(self) -> Any:
        entry = self.source
        problem = target_problem(self.network)
        if problem is not None:
            raise CustomModelError(problem)
        module = entry.import_module()
        fn = getattr(module, entry.class_name, None)
        if not callable(fn):
            raise CustomModelError(f"{entry.module_part} has no function {entry.class_name!r}")
        params = list(inspect.signature(fn).parameters)
        if params[:2] != ["input_shape", "n_classes"]:
            raise CustomModelError(
                f"{entry.class_name} takes ({', '.join(params)}); a network function takes "
                "(input_shape, n_classes, **its_arguments) and returns a torch.nn.Module"
            )
        # The trainer's arguments go to the trainer: a function argument of the same name would
        # silently take the searched value away from the optimizer or the epoch loop.
        clash = [name for name in params[2:] if name in self.trainer_arguments()]
        if clash:
            raise CustomModelError(
                f"{entry.class_name}'s argument {clash[0]!r} has the name of torch.network's "
                f"trainer argument {clash[0]!r}, which hpsearch's trainer uses; rename it in "
                f"{entry.module_part} (trainer arguments: "
                f"{', '.join(sorted(self.trainer_arguments()))})"
            )
        return fn

    def trainer_arguments(self) -> dict[str, Any]:
        return {k: v for k, v in self.load()._parameter_constraints.items() if k != "seed"}

    def own_arguments(self) -> list[str]:
        return list(inspect.signature(self.function()).parameters)[2:]

    def load(self) -> type:
        return import_object("hpsearch.models.torch_models:TorchNetwork")

    def arguments(self) -> dict[str, Any]:
        own = {k: AnyValue() for k in self.own_arguments()}
        return {**self.trainer_arguments(), "network": AnyValue(), **own}

    def needs_torch(self) -> bool:
        return True

    def check(self) -> None:
        """Import the user's function and check its signature."""
        self.function()

    def can_keep_weights(self) -> bool:
        return True

    def file(self) -> Path | None:
        return self.source.file()

    def source_sha256(self) -> str | None:
        return self.source.source_sha256()

    def build(self, params: dict[str, Any], seed: int) -> Any:
        own = set(self.own_arguments())
        training = {k: v for k, v in params.items() if k not in own and k != "network"}
        network_args = {k: v for k, v in params.items() if k in own}
        return self.load()(
            network_fn=self.function(),
            network_args=network_args,
            **training,
            seed=seed,
            network_file=self.file(),
        )
