"""Loudspeaker broadcast missions: requests, speech, clips, coverage planning and proof.

* :mod:`.request`: the broadcast request staff submit, and its validation;
* :mod:`.voices`, :mod:`.speech`, :mod:`.clips`: text to speech with espeak-ng, clip storage;
* :mod:`.acoustics`: the speaker model (source level, spreading, absorption, audible radius);
* :mod:`.lanes`, :mod:`.timeline`, :mod:`.playback`, :mod:`.coverage`, :mod:`.planner`: the
  coverage plan and its prediction before flight (transits around no-fly zones by
  :mod:`fleet.airspace`);
* :mod:`.flight`: the broadcast steps of one drone's flight (clip, plan, session, records);
* :mod:`.report`: the proof of coverage after flight, with its PNG map.

See ``docs/broadcast.md``.
"""
