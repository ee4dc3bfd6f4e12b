"""The speaker payload bridge: loudspeaker payloads over MQTT (``docs/protocols/speaker.md``).

``wire`` (the protocol's messages and topics; the simulator imports it), ``translate`` (wire <->
:mod:`fleet.speaker`), ``address`` (link URLs), ``control`` (``SpeakerHandle``, the
``SpeakerControl`` of one payload) and ``link`` (the ``speaker+mqtt://`` link; its ``register()``
adds the schemes, called by the composition root).
"""
