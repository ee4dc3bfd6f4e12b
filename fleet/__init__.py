"""streetfleet core: settings, clock, errors, domain model, registry, event bus, store,
geometry, the VehicleLink port and the runtime supervisor. Imports nothing else of ours."""
