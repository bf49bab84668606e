"""The example plant, adjusted for accelerated simulated time (shared by the e2e modules).

The simulator runs at ``SPEED`` x real time but the server's timers (dosing pulse and interval,
discrepancy delay, frozen window, PID time-proportioning cycle) are real seconds, as in a plant. The
copy divides those timers so that one real second of the server sees what it would see in a plant,
and starts the nickel bath off its setpoints (temperature 10 degC low, pH 0.5 high) so that the
heat-up and the pH recovery happen within the test. Everything else is the example file unchanged.
"""

from __future__ import annotations

from typing import Any

from .harness import tank

SPEED = 100.0
NICKEL_T0 = 45.0  # setpoint 55
NICKEL_PH0 = 4.7  # setpoint 4.2, deadband 0.1


def accelerated(data: dict[str, Any]) -> None:
    ni = tank(data, "nickel")
    sim = ni["simulation"]
    sim["thermal"]["initial_c"] = NICKEL_T0
    # 3x the element so 10 degC take ~15 s real at 100x (the 12 kW bath needs ~50 min of plant time)
    sim["thermal"]["heater_kw"] = 36
    sim["ph"]["initial"] = NICKEL_PH0
    for loop in ni["loops"]:
        if loop["id"] == "temp":
            # integral time and time-proportioning cycle are real seconds: 600 s and 10 s of plant time
            # would be 6 s and 0.1 s at 100x; 20 s keeps the overshoot of the 3x element small
            loop["pid"]["ti_s"] = 20.0
            loop["pid"]["cycle_s"] = 1.0
        if loop["id"] == "rectifier":
            loop["rectifier"]["ramp_s"] = 1.0  # the soft start is real seconds too (20 s of plant time)
        if loop["id"] == "ph":
            # a 5 s pulse of plant time is 0.05 s at 100x: 0.5 s real = 50 s of pumping (~0.15 pH)
            loop["dosing"].update({"pulse_s": 0.5, "min_interval_s": 3, "max_doses_per_hour": 600})
    for group in ("temperature", "ph"):
        sensor = ni["sensors"][group]
        sensor["discrepancy_delay_s"] = 2
        if "frozen" in sensor:
            sensor["frozen"]["window_s"] = 5
