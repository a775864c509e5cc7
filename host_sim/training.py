"""Handset training for the portal's Help page, recorded from the real firmware.

`python -m host_sim.training` (or `make portal-training`) runs two scenarios on the simulator, a breath test
and an unlock-code entry, and writes the screens the handset showed, step by step with the narration and the
button pressed, to companion/app/portal/training.json. The companion reads that file; it never imports the
simulator. A test runs this again and checks the committed file is what the firmware shows today.
"""

import json
import sys
from pathlib import Path

from host_sim import scenario

OUT = Path(__file__).resolve().parents[1] / "companion" / "app" / "portal" / "training.json"

# the narration; each line is also a gettext id in companion/app/portal/help.py (TRAINING_CAPTIONS)
BREATH_TEST = """
date 2026-11-23 07:30
ambient 15
say "Turn the key. The sensor warms up."
key on
wait-for "BLOW" within 1m
say "When the handset shows BLOW, blow steadily into the mouthpiece."
blow brac=0 volume=2.2 duration=5.5 temp=34
wait-for "PASS" within 15s
say "Pass: start the engine within the time shown."
wait 3s
"""

UNLOCK_CODE = """
date 2026-11-23 07:30
say "The handset is locked."
power cut
wait 17m
power on
wait 1s
power cut
wait 17m
power on
wait 1s
power cut
wait 17m
power on
wait 1s
key on
wait 2s
say "Press OK to enter the unlock code from the portal."
press OK
say "RIGHT and LEFT change the digit; OK takes it."
code clear
wait 2s
say "The code is accepted. A breath test follows."
wait-for "BLOW" within 1m
"""

_SYMBOLS = "0123456789<X"


def _screens(events):
    """{say, lines, button} for each screen change from the first narration on (blank screens left out)."""
    steps = []
    caption = None
    shown = None
    pending_press = None
    for line in events:
        _stamp, _, text = line.partition(" ")
        if text.startswith("SAY "):
            # narration describes the screen shown, unless that one has its own already: then the next
            if steps and not steps[-1]["say"]:
                steps[-1]["say"] = text[4:]
            else:
                caption = text[4:]
        elif text.startswith("> press "):
            pending_press = text[len("> press "):].split(" ")[0]
        elif text.startswith("DISPLAY ") and caption is not None:
            first, second = text[9:-1].split('" "')
            lines = [first, second]
            if lines == shown or not (first or second):
                continue
            button = pending_press or _typed(shown, lines)
            pending_press = None
            if first.startswith("HEATING") and steps and steps[-1]["lines"][0].startswith("HEATING") and \
                    not caption:
                steps[-1]["lines"] = lines  # warm-up progress: one step, the last percentage
            else:
                steps.append({"say": caption or "", "lines": lines, "button": button or ""})
            caption = ""
            shown = lines
    return steps


def _typed(before, after):
    """The button that turned the code-entry line before into after (None outside code entry)."""
    if not before or before[0] != "ENTER CODE" or after[0] != "ENTER CODE":
        return None
    a, b = before[1], after[1]
    pos_a = next((i for i, ch in enumerate(a) if ch == "_"), len(a)) - 1
    pos_b = next((i for i, ch in enumerate(b) if ch == "_"), len(b)) - 1
    if pos_b > pos_a:
        return "OK"
    ia, ib = _SYMBOLS.find(a[pos_a]), _SYMBOLS.find(b[pos_b])
    if ia < 0 or ib < 0:
        return None
    return "RIGHT" if ib == (ia + 1) % 12 else "LEFT"


def record():
    """The training steps, as the firmware shows them now."""
    out = {}
    for key, text in (("breath_test", BREATH_TEST), ("unlock_code", UNLOCK_CODE)):
        sc = scenario.Scenario(key)
        sc.run_text(text)
        if sc.failures:
            raise RuntimeError("training scenario %s failed: %s" % (key, sc.failures))
        out[key] = {"steps": _screens(sc.sim.trace.events)}
    return out


def main(argv):
    """Write (or with --check, compare) companion/app/portal/training.json."""
    text = json.dumps(record(), indent=1, ensure_ascii=False) + "\n"
    if "--check" in argv:
        same = OUT.exists() and OUT.read_text() == text
        print("training.json is " + ("current" if same else "OUT OF DATE: run make portal-training"))
        return 0 if same else 1
    OUT.write_text(text)
    print("wrote " + str(OUT))
    return 0


if __name__ == "__main__":
    import host_sim  # noqa: F401  (firmware on sys.path)

    sys.exit(main(sys.argv[1:]))
