"""The field registry: which embedding slot of the model each physical field uses.

An entry is ``(family, name) -> index``. ``name`` is a canonical physviz field name
(``height``, ``velocity_x``, ``density`` ...). ``family`` groups fields that share
embeddings: in MPP, velocities of incompressible and compressible Navier-Stokes have
separate slots, so the MPP preset uses MPP's dataset keys as families. An entry with
family ``""`` is shared by every family (our own preset works that way).

MPP preset (``FieldRegistry.mpp()``), slots as MPP's ``MixedDataset`` assigns them
(walking its dataset table in order, ``use_all_fields=True``; see docs/model.md), with
MPP's field names mapped onto ours:

======  ===========  ==================  ========================================
index   family       physviz name        MPP name
======  ===========  ==================  ========================================
0       swe          height              h
1, 2    incompNS     velocity_x, _y      Vx, Vy
3       incompNS     particles           particles
4, 5    diffre2d     activator, inhibitor
6, 7    compNS       velocity_x, _y      Vx, Vy
8, 9    compNS       density, pressure
10, 11  (free)       never trained; the first fields added get them
======  ===========  ==================  ========================================

MPP's own names (``h``, ``Vx``, ``Vy``, ``Vz``) and other aliases are resolved through
the physviz name map, so ``lookup("Vx", family="compNS") == 6``. Families also accept
aliases (``shallow_water`` for ``swe``, ``navier_stokes`` for ``incompNS``,
``fitzhugh_nagumo`` for ``diffre2d``, ``euler`` for ``compNS``).

When a name is in several families and none is given, ``lookup`` takes the first
family in registry order; ``lookup_fields`` resolves a whole field set at once and
prefers the one family holding all of them (``density, pressure, velocity_x`` -> compNS).

The registry only names slots: adding a field beyond ``n_slots`` raises ``n_slots`` and
leaves the model alone. Widening a model is an explicit step
(`physviz.model.surgery.ensure_field_slots` or ``expand_fields``).
"""
from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from physviz.errors import ParameterError, UnknownFieldError


@dataclass(frozen=True)
class FieldEntry:
    """One registry slot: a field name within a family."""

    family: str
    name: str
    index: int


MPP_FAMILY_ALIASES: dict[str, str] = {
    "shallow_water": "swe",
    "shallow_water_2d": "swe",
    "navier_stokes": "incompNS",
    "ins": "incompNS",
    "incompressible_navier_stokes": "incompNS",
    "fitzhugh_nagumo": "diffre2d",
    "reaction_diffusion_2d": "diffre2d",
    "euler": "compNS",
    "cns": "compNS",
    "compressible_navier_stokes": "compNS",
}

MPP_FIELDS: list[tuple[str, str]] = [
    ("swe", "height"),
    ("incompNS", "velocity_x"),
    ("incompNS", "velocity_y"),
    ("incompNS", "particles"),
    ("diffre2d", "activator"),
    ("diffre2d", "inhibitor"),
    ("compNS", "velocity_x"),
    ("compNS", "velocity_y"),
    ("compNS", "density"),
    ("compNS", "pressure"),
]

# Our preset: every built-in simulator's fields plus common ones, shared across datasets.
PHYSVIZ_FIELDS: list[str] = [
    "height", "velocity_x", "velocity_y", "velocity_z", "vorticity", "particles",
    "activator", "inhibitor", "A", "B", "density", "pressure", "energy", "temperature",
    "momentum_x", "momentum_y", "momentum_z", "buoyancy", "concentration", "tracer",
]
PHYSVIZ_SLOTS = 24  # 4 spare slots for fine-tuning before the model must widen
# the slot a field is read through when the model never trained its own: training with
# TrainConfig.field_dropout shows it every field in turn, so it learns what fields have in common
GENERIC = "generic"


def _canonical(name: str) -> str:
    """A field name in physviz's canonical spelling (MPP's 'Vx' -> 'velocity_x')."""
    from physviz.fields.name_map import DEFAULT_FIELD_NAMES

    return DEFAULT_FIELD_NAMES.get(name, name)


class FieldRegistry:
    """Maps (family, field name) to the model's embedding index."""

    def __init__(
        self,
        entries: Iterable[tuple[str, str] | tuple[str, str, int] | FieldEntry] = (),
        n_slots: int | None = None,
        name: str = "custom",
        family_aliases: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.family_aliases = dict(family_aliases or {})
        self._entries: list[FieldEntry] = []
        for i, item in enumerate(entries):
            if isinstance(item, FieldEntry):
                entry = item
            elif len(item) == 3:
                entry = FieldEntry(str(item[0]), str(item[1]), int(item[2]))
            else:
                entry = FieldEntry(str(item[0]), str(item[1]), i)
            self._check_new(entry.family, entry.name, entry.index)
            self._entries.append(entry)
        used = max((e.index for e in self._entries), default=-1) + 1
        self.n_slots = int(n_slots) if n_slots is not None else used
        if self.n_slots < used:
            raise ParameterError(f"Registry {name!r} uses index {used - 1} but has only n_slots={self.n_slots}.")

    # -- presets -------------------------------------------------------------
    @classmethod
    def mpp(cls) -> "FieldRegistry":
        """MPP's 12-slot field indexing (slots 10 and 11 free)."""
        return cls(MPP_FIELDS, n_slots=12, name="mpp", family_aliases=MPP_FAMILY_ALIASES)

    @classmethod
    def physviz(cls, n_slots: int = PHYSVIZ_SLOTS) -> "FieldRegistry":
        """Our preset: the built-in simulators' fields, shared across datasets, plus spare slots."""
        return cls([("", n) for n in PHYSVIZ_FIELDS], n_slots=max(n_slots, len(PHYSVIZ_FIELDS)), name="physviz")

    @classmethod
    def preset(cls, name: str, n_slots: int | None = None) -> "FieldRegistry":
        """A registry preset by name: 'mpp' or 'physviz'."""
        if name == "mpp":
            reg = cls.mpp()
        elif name == "physviz":
            reg = cls.physviz()
        else:
            raise ParameterError(f"Unknown field registry preset {name!r}; choose 'mpp' or 'physviz'.")
        if n_slots is not None and n_slots > reg.n_slots:
            reg.n_slots = int(n_slots)
        return reg

    # -- queries -------------------------------------------------------------
    @property
    def entries(self) -> list[FieldEntry]:
        """All entries in index order."""
        return sorted(self._entries, key=lambda e: e.index)

    @property
    def families(self) -> list[str]:
        """Families in registry order ('' is the shared family)."""
        seen: dict[str, None] = {}
        for e in self.entries:
            seen.setdefault(e.family, None)
        return list(seen)

    def names(self, family: str | None = None) -> list[str]:
        """Field names (of one family, shared ones included, if given)."""
        fam = self._family(family) if family is not None else None
        return [e.name for e in self.entries if fam is None or e.family in (fam, "")]

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        if isinstance(name, tuple):
            return self._find(_canonical(str(name[1])), self._family(str(name[0]))) is not None
        return any(e.name == _canonical(str(name)) for e in self._entries)

    def __repr__(self) -> str:
        return f"FieldRegistry({self.name!r}, {len(self)} fields, {self.n_slots} slots)"

    def known(self) -> list[str]:
        """'family/name' labels (or bare names for shared entries), for messages."""
        return [f"{e.family}/{e.name}" if e.family else e.name for e in self.entries]

    def _family(self, family: str | None) -> str | None:
        if family is None or family == "":
            return family
        return self.family_aliases.get(family, family)

    def _find(self, name: str, family: str | None) -> FieldEntry | None:
        """The entry of a name in a family (shared entries match any family)."""
        hits = [e for e in self.entries if e.name == name]
        if family is not None:
            exact = [e for e in hits if e.family == family]
            hits = exact or [e for e in hits if e.family == ""]
        return hits[0] if hits else None

    def _split(self, key: str | tuple[str, str]) -> tuple[str | None, str]:
        if isinstance(key, tuple):
            return str(key[0]), str(key[1])
        key = str(key)
        if "/" in key:
            fam, name = key.split("/", 1)
            return fam, name
        return None, key

    def lookup(self, name: str | tuple[str, str], family: str | None = None, append: bool = False) -> int:
        """Index of a field; `name` may be 'density', ('compNS', 'density') or 'compNS/density'.

        Unknown fields raise UnknownFieldError, or with ``append=True`` get a new slot.
        """
        fam, field = self._split(name)
        fam = self._family(family if family is not None else fam)
        field = _canonical(field)
        entry = self._find(field, fam)
        if entry is not None:
            return entry.index
        if append:
            return self.add(field, family=fam or "")
        where = f" in family {fam!r}" if fam else ""
        close = self.suggest(field)
        hint = f" It is probably {' or '.join(repr(c) for c in close)}." if close else ""
        raise UnknownFieldError(
            f"Field {field!r}{where} is not in the {self.name!r} field registry (known: {', '.join(self.known())}).{hint} "
            f"Use lookup(..., append=True) or registry.add({field!r}) to give it a new slot, then fine-tune."
        )

    def suggest(self, name: str, n: int = 3) -> list[str]:
        """Registry field names `name` probably means: one of its parts ('concentration_A' -> 'A'), then close spellings."""
        known = list(dict.fromkeys(self.names()))
        by_lower = {k.lower(): k for k in known}
        out: list[str] = []
        parts = [p for p in re.split(r"[^0-9A-Za-z]+", str(name)) if p]
        for part in reversed(parts):  # a qualifier usually ends the name: species, phase, component
            hit = by_lower.get(_canonical(part).lower()) or by_lower.get(part.lower())
            if hit is not None and hit not in out:
                out.append(hit)
        for close in difflib.get_close_matches(_canonical(str(name)).lower(), list(by_lower), n=n, cutoff=0.6):
            if by_lower[close] not in out:
                out.append(by_lower[close])
        return out[:n]

    def lookup_fields(self, names: Sequence[str], family: str | None = None, append: bool = False) -> list[int]:
        """Indices of a field set, preferring the one family that holds all of them."""
        if family is None and not any(isinstance(n, tuple) or "/" in str(n) for n in names):
            canon = [_canonical(str(n)) for n in names]
            for fam in self.families:
                if fam and all(self._find(n, fam) is not None for n in canon):
                    family = fam
                    break
        return [self.lookup(n, family=family, append=append) for n in names]

    # -- growth --------------------------------------------------------------
    def _check_new(self, family: str, name: str, index: int) -> None:
        if index < 0:
            raise ParameterError(f"Registry index {index} for field {name!r} must be non-negative.")
        for e in self._entries:
            if e.index == index:
                raise ParameterError(f"Registry index {index} is already used by {e.family}/{e.name}.")
            if e.family == family and e.name == name:
                raise ParameterError(f"Field {family}/{name} is already in the registry (index {e.index}).")

    def add(self, name: str, family: str = "") -> int:
        """Give a new field the next free slot (raising ``n_slots`` past the last one); return its index."""
        fam = self._family(family) or ""
        field = _canonical(name)
        for e in self._entries:
            if e.family == fam and e.name == field:
                return e.index
        index = max((e.index for e in self._entries), default=-1) + 1
        self._check_new(fam, field, index)
        self._entries.append(FieldEntry(fam, field, index))
        self.n_slots = max(self.n_slots, index + 1)
        return index

    # -- (de)serialisation ---------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "n_slots": self.n_slots,
            "entries": [[e.family, e.name, e.index] for e in self.entries],
            "family_aliases": dict(self.family_aliases),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FieldRegistry":
        """Inverse of to_dict."""
        try:
            return cls(
                [tuple(e) for e in data["entries"]],
                n_slots=data.get("n_slots"),
                name=data.get("name", "custom"),
                family_aliases=data.get("family_aliases"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ParameterError(f"The stored field registry is malformed ({exc}).") from None

    def copy(self) -> "FieldRegistry":
        """An independent copy."""
        return FieldRegistry.from_dict(self.to_dict())


def read_through_generic(registry: FieldRegistry, trained: Iterable[str] | None, names: Sequence[str]) -> list[str]:
    """The fields of `names` a model reads through its generic slot: those its training never saw, when it has one.

    `trained` is the model's record of trained fields (checkpoint metadata ``trained_fields``); a model
    without that record or without a GENERIC slot reads every field through its own slot.
    """
    if trained is None or GENERIC not in registry:
        return []
    seen = set(trained)
    return [n for n in names if n not in seen and n != GENERIC]


def generic_names(registry: FieldRegistry, trained: Iterable[str] | None, names: Sequence[str]) -> list[str]:
    """`names` as the model reads them: each field `read_through_generic` lists becomes GENERIC."""
    routed = set(read_through_generic(registry, trained, names))
    return [GENERIC if n in routed else n for n in names]

