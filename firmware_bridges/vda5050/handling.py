"""What the service asks of a van's load handling, and what it assumes of a van: the
vendor-facing settings (``vda5050`` section of :class:`fleet.settings.Settings`) applied to one
van's factsheet.

:class:`LoadHandling` answers two questions for the bridge:

- which ``pick``/``drop`` parameters to send at a station (:meth:`LoadHandling.params`): the
  site's load type and station type (``vda5050.sites``, else ``load_type``,
  ``pick_station_type``, ``drop_station_type``), the consignment id, and streetfleet's own
  ``boxes``, ``weight`` and ``sku`` only where the van declares them (or declares no parameters
  for the action at all); every value is checked against the data type the van declares;
- what the van can do (:meth:`LoadHandling.capabilities`, a :class:`fleet.van.VanCapabilities`):
  each figure from the factsheet where it states it, else from the operator's setting for that
  vehicle (``vda5050.vehicles``), else the section's conservative default; the load set of the
  configured load type gives capacity, per-load weight, load positions and speed limit; what
  the service cannot ask of the van (no pick or drop, a load type it has no load set for, a
  required parameter the service does not send) is listed in ``unsupported`` so that planning
  passes it over with that reason, and sites whose clearance it exceeds in ``unfit_sites``.

VDA 5050 factsheets have no list of station types (section 6.15: load and station types are
assigned at integration), so the station type is the site's setting alone; the load type is
checked against the van's load sets.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from firmware_bridges.vda5050 import wire
from fleet.errors import ValidationError
from fleet.settings import Vda5050Settings
from fleet.van import Drop, Pick, VanCapabilities

STANDARD_PARAMS = frozenset({"loadId", "loadType", "stationType", "stationName"})
"""Pick/drop parameters of the specification (section 6.8.1) the service always sends."""
OWN_PARAMS = frozenset({"boxes", "weight", "sku"})
"""streetfleet's own pick/drop parameters, sent only to vans that declare them."""
_TYPES: dict[str, type | tuple[type, ...]] = {
    "BOOL": bool,
    "BOOLEAN": bool,
    "NUMBER": (int, float),
    "FLOAT": (int, float),
    "INTEGER": int,
    "STRING": str,
    "OBJECT": dict,
    "ARRAY": list,
}
"""``valueDataType`` of a factsheet action parameter -> the Python types that satisfy it."""


@dataclass(frozen=True, slots=True)
class LoadHandling:
    """The ``vda5050`` settings as the bridge applies them (see the module docstring)."""

    settings: Vda5050Settings = field(default_factory=Vda5050Settings)

    # --- what is sent -------------------------------------------------------------------------

    def station(self, kind: str, site: str) -> dict[str, str]:
        """``loadType``, ``stationType`` (and ``stationName`` if set) at ``site``."""
        s = self.settings
        own = s.sites.get(site)
        default_station = s.pick_station_type if kind == "pick" else s.drop_station_type
        out = {
            "loadType": (own.load_type if own and own.load_type else None) or s.load_type,
            "stationType": (own.station_type if own and own.station_type else None)
            or default_station,
        }
        if own is not None and own.station_name:
            out["stationName"] = own.station_name
        return out

    def params(
        self, action: Pick | Drop, declared: wire.AgvAction | None = None
    ) -> dict[str, wire.ParamValue]:
        """The parameters of a pick or drop, fitted to what the van declares for the action;
        raises :class:`ValidationError` for a value of another data type than declared."""
        kind = "pick" if isinstance(action, Pick) else "drop"
        values: dict[str, wire.ParamValue] = {
            "loadId": action.load_id,
            **self.station(kind, action.site),
            "boxes": action.boxes,
            "weight": round(float(action.mass_kg), 3),
        }
        if action.sku:
            values["sku"] = action.sku
        if declared is None or declared.action_parameters is None:
            return values
        types = {p.key: p.value_data_type for p in declared.action_parameters}
        out = {k: v for k, v in values.items() if k in STANDARD_PARAMS or k in types}
        for key, value in out.items():
            expected = _TYPES.get(str(types.get(key, "")).upper())
            if expected is not None and (
                not isinstance(value, expected) or (expected is int and isinstance(value, bool))
            ):
                raise ValidationError(
                    f"{kind} parameter {key}={value!r} is not of the type {types[key]} the van "
                    "declares",
                    field=key,
                )
        return out

    # --- what the van can do ------------------------------------------------------------------

    def capabilities(
        self, fs: wire.Factsheet | None, vehicle_id: str, version: str = ""
    ) -> VanCapabilities:
        """What the service takes the van to be able to do (see the module docstring)."""
        s = self.settings
        lim = s.vehicles.get(vehicle_id)

        def setting(name: str, default: float | None) -> float | None:
            value = getattr(lim, name) if lim is not None else None
            return value if value is not None else default

        if fs is None:
            caps = VanCapabilities(
                series_name="no factsheet",
                max_load_kg=float(setting("max_kg", s.max_kg) or s.max_kg),
                max_boxes=int(setting("max_boxes", s.max_boxes) or s.max_boxes),
                speed_max_mps=float(setting("speed_max_mps", s.speed_max_mps) or 1.0),
                max_loads=int(setting("max_loads", s.max_loads) or 1),
                length_m=setting("length_m", None),
                width_m=setting("width_m", None),
                height_m=setting("height_m", None),
                from_factsheet=False,
                protocol_version=version,
            )
            return _with_sites(caps, self._unfit(caps))
        declared = {a.action_type: a for a in fs.protocol_features.agv_actions}
        node_actions = frozenset(
            a.action_type for a in fs.protocol_features.agv_actions if "NODE" in a.action_scopes
        )
        instant = frozenset(
            a.action_type for a in fs.protocol_features.agv_actions if "INSTANT" in a.action_scopes
        )
        sets = list(fs.load_specification.load_sets or ())
        load_types = frozenset(x.load_type for x in sets)
        own = [x for x in sets if x.load_type == s.load_type]
        ls = own[0] if own else None
        unsupported: list[str] = []
        if declared:
            for kind in ("pick", "drop"):
                if kind not in node_actions:
                    unsupported.append(f"its factsheet lists no {kind} action on nodes")
                    continue
                sendable = STANDARD_PARAMS | OWN_PARAMS
                missing = [
                    p.key
                    for p in declared[kind].action_parameters or ()
                    if not p.is_optional and p.key not in sendable
                ]
                if missing:
                    unsupported.append(
                        f"its {kind} needs {', '.join(missing)}, which the service does not send"
                    )
        if sets and ls is None:
            unsupported.append(
                f"load type {s.load_type} (vda5050.load_type) is not among its load sets "
                f"({', '.join(sorted(load_types))})"
            )
        phys = fs.physical_parameters
        max_kg = fs.type_specification.max_load_mass
        if ls is not None and ls.max_boxes:
            max_loads: int | None = int(setting("max_loads", 0) or 0) or None
            max_boxes = ls.max_boxes
        else:
            positions = (ls.load_positions if ls is not None else None) or (
                fs.load_specification.load_positions
            )
            max_loads = len(positions) if positions else int(setting("max_loads", s.max_loads) or 1)
            max_boxes = int(setting("max_boxes", s.max_boxes) or s.max_boxes)
        if ls is not None and ls.max_weight and max_loads:
            max_kg = min(max_kg, ls.max_weight * max_loads)
        speed = phys.speed_max
        if ls is not None and ls.agv_speed_limit:
            speed = min(speed, ls.agv_speed_limit)
        caps = VanCapabilities(
            series_name=fs.type_specification.series_name,
            max_load_kg=max_kg,
            max_boxes=max_boxes,
            speed_max_mps=speed,
            acceleration_mps2=phys.acceleration_max,
            deceleration_mps2=phys.deceleration_max,
            node_actions=node_actions,
            instant_actions=instant,
            pick_time_per_box_s=ls.pick_time if ls is not None else None,
            drop_time_per_box_s=ls.drop_time if ls is not None else None,
            state_interval_s=fs.protocol_limits.timing.default_state_interval,
            length_m=phys.length,
            width_m=phys.width,
            height_m=phys.height_max,
            max_loads=max_loads,
            load_types=load_types,
            unsupported=tuple(unsupported),
            from_factsheet=True,
            protocol_version=version,
        )
        return _with_sites(caps, self._unfit(caps))

    def _unfit(self, caps: VanCapabilities) -> tuple[str, ...]:
        out = []
        for site, h in sorted(self.settings.sites.items()):
            for limit, size in (
                (h.max_vehicle_length_m, caps.length_m),
                (h.max_vehicle_width_m, caps.width_m),
                (h.max_vehicle_height_m, caps.height_m),
            ):
                if limit is not None and size is not None and size > limit:
                    out.append(site)
                    break
        return tuple(out)


def _with_sites(caps: VanCapabilities, unfit: tuple[str, ...]) -> VanCapabilities:
    return replace(caps, unfit_sites=unfit)
