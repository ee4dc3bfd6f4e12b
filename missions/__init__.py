"""Everything about work.

Requests, allocation, dispatch, mission kinds and planners, the mission state machine, the
executor and the re-planning monitors. Imports only ``fleet``.
"""
