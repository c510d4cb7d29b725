"""The labs of the course by name, as `labctl lab` knows them."""

from __future__ import annotations

from labctl.lab import lab1, lab3, lab4, lab5
from labctl.lab.framework import Lab, LabUnavailable
from labctl.lab.i18n import Catalogue

LABS: dict[str, Lab] = {
    "1": lab1.LAB,
    "1 --grpc": lab1.GRPC,
    "3": lab3.LAB,
    "4": lab4.LAB,
    "4 --kafka": lab4.KAFKA,
    "5": lab5.LAB,
}


def find(which: str, *, grpc: bool, kafka: bool, t: Catalogue) -> Lab:
    """The lab `which` names with its variant; LabUnavailable naming what exists for anything else."""
    variant = "grpc" if grpc else "kafka" if kafka else None
    if grpc and kafka:
        raise LabUnavailable(t("error.two_variants"))
    name = which + (f" --{variant}" if variant else "")
    if name in LABS:
        return LABS[name]
    if which in LABS:
        raise LabUnavailable(t("error.no_variant", lab=which, variant=variant, known=", ".join(LABS)))
    raise LabUnavailable(t("error.no_lab", lab=which, known=", ".join(LABS)))
