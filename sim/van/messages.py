"""Messages of the simulated van: state, visualization, connection, factsheet, errors.

The van's controller (:class:`sim.van.agv.VanAgv`) decides; these functions write down what it
holds as VDA 5050 2.1 messages (``firmware_bridges.vda5050.wire`` models) for the MQTT client
to publish: :func:`state_message` (section 6.10, everything the van reports),
:func:`visualization_message`, :func:`connection_message`, :func:`factsheet` (section 6.15) and
the :func:`error` entries of a state. They read the van and change nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from firmware_bridges.vda5050 import wire
from firmware_bridges.vda5050.wire import ErrorLevel
from sim.van.model import wrap_angle

if TYPE_CHECKING:
    from sim.van.agv import VanAgv

LOAD_TYPE = "BOX"
"""The load type of every consignment: standard boxes."""
LOAD_POSITION = "cargo"
"""The van's single load position."""


def error(
    error_type: str,
    description: str,
    refs: Iterable[tuple[str, str]] = (),
    level: ErrorLevel = ErrorLevel.WARNING,
    hint: str | None = None,
) -> wire.Error:
    return wire.Error(
        error_type=error_type,
        error_level=level,
        error_description=description,
        error_hint=hint,
        error_references=[wire.ErrorReference(reference_key=k, reference_value=v) for k, v in refs]
        or None,
    )


def header(agv: VanAgv, header_id: int, now: float) -> dict[str, Any]:
    return {
        "header_id": header_id,
        "timestamp": wire.format_timestamp(now),
        "version": agv.version,
        "manufacturer": agv.manufacturer,
        "serial_number": agv.serial_number,
    }


def agv_position(agv: VanAgv) -> wire.AgvPosition:
    return wire.AgvPosition(
        x=round(agv.pose.x, 3),
        y=round(agv.pose.y, 3),
        theta=round(wrap_angle(agv.pose.theta), 4),
        map_id=agv.map_id,
        position_initialized=True,
        localization_score=0.95,
        deviation_range=0.2,
    )


def state_message(agv: VanAgv, header_id: int, now: float) -> wire.State:
    """The state as it is now."""
    soc = agv.battery.soc
    return wire.State(
        **header(agv, header_id, now),
        order_id=agv.order_id,
        order_update_id=agv.order_update_id,
        last_node_id=agv.last_node_id,
        last_node_sequence_id=agv.last_node_sequence_id,
        node_states=[
            wire.NodeState(
                node_id=n.node_id,
                sequence_id=n.sequence_id,
                released=n.released,
                node_description=n.node_description,
                node_position=n.node_position,
            )
            for n in agv.node_states
        ],
        edge_states=[
            wire.EdgeState(
                edge_id=e.edge_id,
                sequence_id=e.sequence_id,
                released=e.released,
                edge_description=e.edge_description,
            )
            for e in agv.edge_states
        ],
        driving=agv.driving,
        paused=agv.paused,
        new_base_request=agv.new_base_request,
        distance_since_last_node=round(agv.distance_since_last_node, 2),
        action_states=[
            wire.ActionState(
                action_id=r.action.action_id,
                action_type=r.action.action_type,
                action_description=r.action.action_description,
                action_status=r.status,
                result_description=r.result or None,
            )
            for r in agv.actions.values()
        ],
        battery_state=wire.BatteryState(
            battery_charge=round(soc * 100, 2),
            battery_voltage=round(agv.battery.voltage(agv.spec), 2),
            battery_health=100,
            charging=agv.battery.charging,
            reach=round(agv.spec.reach_m(soc, agv.cargo_kg)),
        ),
        operating_mode=agv.operating_mode,
        errors=list(agv.errors),
        information=[
            wire.Info(
                info_type="cargo",
                info_level=wire.InfoLevel.INFO,
                info_description=f"{agv.cargo_boxes} boxes, {agv.cargo_kg:.0f} kg on board",
            )
        ],
        safety_state=wire.SafetyState(e_stop=agv.e_stop, field_violation=False),
        maps=[wire.MapInfo(map_id=agv.map_id, map_version="1", map_status=wire.MapStatus.ENABLED)],
        agv_position=agv_position(agv),
        velocity=wire.Velocity(vx=round(agv.pose.speed, 3), vy=0.0, omega=0.0),
        loads=[
            wire.Load(
                load_id=c.load_id,
                load_type=LOAD_TYPE,
                load_position=LOAD_POSITION,
                weight=round(c.mass_kg, 3),
            )
            for c in agv.cargo.values()
        ],
    )


def visualization_message(agv: VanAgv, header_id: int, now: float) -> wire.Visualization:
    return wire.Visualization(
        **header(agv, header_id, now),
        agv_position=agv_position(agv),
        velocity=wire.Velocity(vx=round(agv.pose.speed, 3), vy=0.0, omega=0.0),
    )


def connection_message(
    agv: VanAgv, header_id: int, now: float, state: wire.ConnectionState
) -> wire.Connection:
    return wire.Connection(**header(agv, header_id, now), connection_state=state)


def factsheet(
    agv: VanAgv,
    header_id: int,
    now: float,
    state_interval_s: float,
    visualization_s: float | None,
) -> wire.Factsheet:
    """The van's factsheet (section 6.15): what it is and what it can do.

    ``blockingTypes`` is left out of ``agvActions``: the 2.1.0 factsheet schema puts its enum on
    the array itself, so no non-empty list validates (pick and drop accept SOFT and HARD).
    """
    spec = agv.spec
    load_params = [
        wire.FactsheetActionParameter(
            key="loadId", value_data_type="STRING", description="consignment id"
        ),
        wire.FactsheetActionParameter(
            key="boxes", value_data_type="INTEGER", description="number of standard boxes"
        ),
        wire.FactsheetActionParameter(
            key="weight",
            value_data_type="NUMBER",
            description="mass of the consignment, kg",
            is_optional=True,
        ),
        wire.FactsheetActionParameter(
            key="sku", value_data_type="STRING", description="stock keeping unit", is_optional=True
        ),
        wire.FactsheetActionParameter(
            key="loadType", value_data_type="STRING", description="always BOX", is_optional=True
        ),
        wire.FactsheetActionParameter(
            key="stationType",
            value_data_type="STRING",
            description="dock or gate",
            is_optional=True,
        ),
        wire.FactsheetActionParameter(
            key="stationName", value_data_type="STRING", is_optional=True
        ),
    ]
    actions = [
        wire.AgvAction(
            action_type="pick",
            action_scopes=["NODE"],
            action_parameters=load_params,
            action_description="load a consignment of boxes at a warehouse dock",
        ),
        wire.AgvAction(
            action_type="drop",
            action_scopes=["NODE"],
            action_parameters=load_params,
            action_description="unload a consignment at a community gate",
        ),
        wire.AgvAction(action_type="startCharging", action_scopes=["INSTANT", "NODE"]),
        wire.AgvAction(action_type="stopCharging", action_scopes=["INSTANT", "NODE"]),
        wire.AgvAction(action_type="startPause", action_scopes=["INSTANT"]),
        wire.AgvAction(action_type="stopPause", action_scopes=["INSTANT"]),
        wire.AgvAction(action_type="cancelOrder", action_scopes=["INSTANT"]),
        wire.AgvAction(action_type="stateRequest", action_scopes=["INSTANT"]),
        wire.AgvAction(action_type="factsheetRequest", action_scopes=["INSTANT"]),
        wire.AgvAction(
            action_type="initPosition",
            action_scopes=["INSTANT"],
            action_parameters=[
                wire.FactsheetActionParameter(key=k, value_data_type=t)
                for k, t in (
                    ("x", "NUMBER"),
                    ("y", "NUMBER"),
                    ("theta", "NUMBER"),
                    ("mapId", "STRING"),
                    ("lastNodeId", "STRING"),
                )
            ],
        ),
    ]
    half_l, half_w = spec.length_m / 2, spec.width_m / 2
    return wire.Factsheet(
        **header(agv, header_id, now),
        type_specification=wire.TypeSpecification(
            series_name=spec.series_name,
            series_description="unmanned light delivery van for city streets",
            agv_kinematic="THREEWHEEL",
            agv_class="CARRIER",
            max_load_mass=spec.max_load_kg,
            localization_types=["NATURAL"],
            navigation_types=["VIRTUAL_LINE_GUIDED"],
        ),
        physical_parameters=wire.PhysicalParameters(
            speed_min=spec.min_speed_mps,
            speed_max=round(spec.max_speed_mps, 3),
            acceleration_max=spec.acceleration_mps2,
            deceleration_max=spec.deceleration_mps2,
            height_min=spec.height_m,
            height_max=spec.height_m,
            width=spec.width_m,
            length=spec.length_m,
        ),
        protocol_limits=wire.ProtocolLimits(
            max_string_lens=wire.MaxStringLens(id_len=128, load_id_len=128),
            max_array_lens=wire.MaxArrayLens(
                order_nodes=5000, order_edges=5000, node_actions=16, edge_actions=0
            ),
            timing=wire.Timing(
                min_order_interval=0.1,
                min_state_interval=0.1,
                default_state_interval=state_interval_s,
                visualization_interval=visualization_s,
            ),
        ),
        protocol_features=wire.ProtocolFeatures(
            optional_parameters=[
                wire.OptionalParameter(
                    parameter="order.nodes.nodePosition",
                    support="REQUIRED",
                    description="the van drives to node positions",
                ),
                wire.OptionalParameter(
                    parameter="order.nodes.nodePosition.allowedDeviationXY", support="SUPPORTED"
                ),
                wire.OptionalParameter(
                    parameter="order.edges.maxSpeed",
                    support="SUPPORTED",
                    description="the road's speed limit",
                ),
                wire.OptionalParameter(parameter="order.edges.length", support="SUPPORTED"),
            ],
            agv_actions=actions,
        ),
        agv_geometry=wire.AgvGeometry(
            envelopes2d=[
                wire.Envelope2d(
                    set="body",
                    polygon_points=[
                        wire.Point(x=x, y=y)
                        for x, y in (
                            (half_l, half_w),
                            (-half_l, half_w),
                            (-half_l, -half_w),
                            (half_l, -half_w),
                        )
                    ],
                )
            ]
        ),
        load_specification=wire.LoadSpecification(
            load_positions=[LOAD_POSITION],
            load_sets=[
                wire.LoadSet(
                    set_name="boxes",
                    load_type=LOAD_TYPE,
                    load_positions=[LOAD_POSITION],
                    max_weight=spec.max_load_kg,
                    pick_time=spec.pick_per_box_s,
                    drop_time=spec.drop_per_box_s,
                    description=(
                        f"standard boxes; pick/drop take {spec.per_stop_s:.0f} s per stop plus "
                        "pickTime/dropTime per box"
                    ),
                    max_boxes=spec.max_boxes,
                )
            ],
        ),
        vehicle_config=wire.VehicleConfig(
            versions=[wire.VersionInfo(key="softwareVersion", value="streetfleet-sim")]
        ),
    )
