// The virtual AGV of vda-5050-lib 1.4.0 (an independent VDA 5050 2.0.0 implementation, by
// Siemens, MIT licence) as a third-party van for streetfleet's tests.
//
// Usage: node virtual-agv.js '<json config>'   (fields below; prints "READY" once online, stops
// cleanly with OFFLINE on SIGTERM or when stdin closes).
//
// What an integrator adds to run this vehicle against a master control that follows the
// specification (each one a known deviation of the library, listed in
// docs/protocols/vda5050.md; nothing here changes what the vehicle does):
//
// 1. instantActions: the library reads the actions from a field "instantActions" (the 1.1 name);
//    the official 2.0.0 schema, and master controls built on it, send them in "actions". The
//    message is handed to the library with the field under both names.
// 2. factsheet: the library answers factsheetRequest with an empty factsheet (header only, not
//    valid against the schema). The factsheet below describes what its virtual adapter really
//    does: pick/drop of one EPAL load at "floor" stations, the instant actions it runs, its speed.
"use strict";

const { AgvController, VirtualAgvAdapter } = require("vda-5050-lib");

const config = {
    brokerUrl: "mqtt://127.0.0.1:1883",
    topicPrefix: "",
    interfaceName: "uagv",
    manufacturer: "sim",
    serialNumber: "AGV-01",
    mapId: "local",
    x: 0,
    y: 0,
    theta: 0,
    lastNodeId: "0",
    vehicleSpeed: 2,
    timeLapse: 1,
    publishStateInterval: 30000,
    loadPositions: ["deck"],
    ...JSON.parse(process.argv[2] || "{}"),
};

const topicFormat = (config.topicPrefix ? config.topicPrefix + "/" : "") +
    "%interfaceName%/%majorVersion%/%manufacturer%/%serialNumber%/%topic%";

// Deviation 1: the actions of an instantActions message under the 2.0.0 schema's name too.
const processInstantActions = AgvController.prototype._processInstantActions;
AgvController.prototype._processInstantActions = function (message) {
    if (message && Array.isArray(message.actions) && message.instantActions === undefined) {
        message = { ...message, instantActions: message.actions };
    }
    return processInstantActions.call(this, message);
};

function factsheet() {
    const loadParams = [
        { key: "stationType", valueDataType: "STRING", description: "must start with floor" },
        { key: "loadType", valueDataType: "STRING", description: "EPAL" },
        { key: "duration", valueDataType: "NUMBER", isOptional: true },
    ];
    const instant = ["startPause", "stopPause", "cancelOrder", "stateRequest", "factsheetRequest",
        "startCharging", "stopCharging", "initPosition", "orderExecutionTime", "noop"];
    return {
        typeSpecification: {
            seriesName: "vda-5050-lib VirtualAgv",
            agvKinematic: "DIFF",
            agvClass: "CARRIER",
            maxLoadMass: 20,
            localizationTypes: ["NATURAL"],
            navigationTypes: ["AUTONOMOUS"],
        },
        physicalParameters: {
            speedMin: 0,
            speedMax: config.vehicleSpeed,
            accelerationMax: 1,
            decelerationMax: 1,
            heightMax: 1.5,
            width: 0.8,
            length: 1.2,
        },
        protocolLimits: {
            maxStringLens: {},
            maxArrayLens: {},
            timing: {
                minOrderInterval: 0.1,
                minStateInterval: 0.1,
                defaultStateInterval: config.publishStateInterval / 1000,
                visualizationInterval: 1,
            },
        },
        protocolFeatures: {
            optionalParameters: [],
            agvActions: [
                { actionType: "pick", actionScopes: ["NODE"], actionParameters: loadParams },
                { actionType: "drop", actionScopes: ["NODE"], actionParameters: loadParams },
                ...instant.map(t => ({ actionType: t, actionScopes: ["INSTANT"] })),
            ],
        },
        agvGeometry: {},
        loadSpecification: {
            loadPositions: config.loadPositions,
            loadSets: [{
                setName: "EPAL",
                loadType: "EPAL",
                loadPositions: config.loadPositions,
                maxWeigth: 20,
            }],
        },
    };
}

async function main() {
    const agvId = { manufacturer: config.manufacturer, serialNumber: config.serialNumber };
    const controller = new AgvController(
        agvId,
        {
            interfaceName: config.interfaceName,
            vdaVersion: "2.0.0",
            transport: { brokerUrl: config.brokerUrl, topicFormat, heartbeat: 5 },
        },
        {
            agvAdapterType: VirtualAgvAdapter,
            publishStateInterval: config.publishStateInterval,
            publishVisualizationInterval: 1000,
        },
        {
            initialPosition: {
                mapId: config.mapId,
                x: config.x,
                y: config.y,
                theta: config.theta,
                lastNodeId: config.lastNodeId,
            },
            vehicleSpeed: config.vehicleSpeed,
            timeLapse: config.timeLapse,
        },
    );
    await controller.start();
    // Deviation 2: a factsheet that says what the virtual adapter does (after start: attaching
    // the adapter sets the empty one).
    controller.updateFactsheet(factsheet());
    let stopping = false;
    const stop = async () => {
        if (stopping) {
            return;
        }
        stopping = true;
        try {
            await controller.stop();
        } finally {
            process.exit(0);
        }
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
    process.stdin.on("end", stop);
    process.stdin.resume();
    process.stdout.write("READY\n");
}

main().catch(err => {
    process.stderr.write(`virtual AGV failed: ${err && err.stack || err}\n`);
    process.exit(1);
});
