"""Help: the FAQ (searchable, in the project's own words), how to enter a code on three buttons, and the
handset training screens recorded from the real firmware by the simulator (`make portal-training`) into `training.json`."""

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from companion.app import i18n
from companion.app.notifications.messages import N_

TRAINING = Path(__file__).resolve().parent / "training.json"

# (subject, question, answer)
FAQ: list[tuple[str, str, str]] = [
    (N_("Breath tests"), N_("How do I give a good breath sample?"),
     N_("Take a normal breath, seal your lips around the mouthpiece and blow steadily until the handset beeps "
        "or shows the result, about five seconds. Do not suck in; do not hum unless the handset asks you to.")),
    (N_("Breath tests"), N_("What is a rolling retest?"),
     N_("While you drive, the handset asks for another sample at random times. You have a few minutes: pull "
        "over where it is safe and blow. A missed retest is logged as a violation and sounds the horn, but "
        "the engine is never stopped.")),
    (N_("Breath tests"), N_("I failed a test but I have not been drinking. What now?"),
     N_("Mouthwash, some foods and smoke can leave alcohol in your mouth. Rinse with water, wait fifteen "
        "minutes and test again. The temporary lock ends by itself; the handset shows the time left.")),
    (N_("Lockouts"), N_("Why is my handset locked out?"),
     N_("After violations (missed retests, power cuts, failed tests) or an overdue service, the handset locks. "
        "Your dashboard shows the cause in words and, for a temporary lock, how long is left.")),
    (N_("Lockouts"), N_("How do I get out of a violation lockout?"),
     N_("Pay the violation reset fee on the portal. The clear goes to the handset at its next sync; the "
        "portal shows when it was delivered and applied. A breath test is still needed to start.")),
    (N_("Unlock codes"), N_("When can I use an unlock code?"),
     N_("Where your program allows codes, you can request a limited number per service period on the "
        "portal. A code works once, on one handset, for a few hours, even without mobile signal.")),
    (N_("Unlock codes"), N_("How do I type a code with three buttons?"),
     N_("LEFT and RIGHT change the digit under the cursor, OK takes it and moves on. After the last digit "
        "the handset checks the code. The symbol < goes back one digit and X cancels.")),
    (N_("Payments"), N_("What happens if I miss a payment?"),
     N_("The handset shows PAYMENT DUE after the due date. Once the payment is recorded, the message goes "
        "away at the next sync.")),
    (N_("Service"), N_("Why do I need service visits?"),
     N_("The sensor is calibrated and the log is checked at every visit. The dashboard shows the next "
        "service or inspection date; the handset warns you ahead of it.")),
    (N_("Mouthpiece care"), N_("How do I look after the mouthpiece?"),
     N_("Use your own mouthpiece and do not share it. Rinse it with warm water after use and let it dry in "
        "the air; no soap, alcohol wipes or mouthwash, which the sensor can read as alcohol. Replace it if "
        "it cracks, and keep it out of direct sun.")),
    (N_("Account"), N_("How do I change my email address?"),
     N_("On your profile, enter the new address and your password. We send a link to the new address; your "
        "sign-in email changes only when you follow it.")),
]


# the narration of the simulator training script's scenarios (translated where shown; a test keeps the lists equal)
TRAINING_CAPTIONS = [
    N_("Turn the key. The sensor warms up."),
    N_("When the handset shows BLOW, blow steadily into the mouthpiece."),
    N_("Pass: start the engine within the time shown."),
    N_("The handset is locked."),
    N_("Press OK to enter the unlock code from the portal."),
    N_("RIGHT and LEFT change the digit; OK takes it."),
    N_("The code is accepted. A breath test follows."),
]


def search(q: str, lang: str) -> list[tuple[str, str, str]]:
    """The FAQ in lang, filtered by every word of q (case-insensitive, in the question, answer or subject)."""
    tr = i18n.gettext_for(lang)
    items = [(tr.gettext(s), tr.gettext(qu), tr.gettext(a)) for s, qu, a in FAQ]
    words = [w for w in (q or "").lower().split() if w][:10]
    if not words:
        return items
    return [it for it in items if all(w in " ".join(it).lower() for w in words)]


def entry_steps(code: str) -> list[tuple[str, str, int]]:
    """How to enter code: per digit, (digit, button, presses) from the symbol shown (0) to the digit, the
    shorter way round the 12 symbols 0-9 < X (firmware fsm/entry.py), then OK."""
    steps = []
    for ch in code:
        d = int(ch)
        if d <= 6:
            steps.append((ch, "RIGHT", d))
        else:
            steps.append((ch, "LEFT", 12 - d))
    return steps


@lru_cache
def training() -> dict[str, Any]:
    """The recorded screen sequences ({} when the file is missing)."""
    if not TRAINING.exists():
        return {}
    with open(TRAINING) as f:
        return json.load(f)  # type: ignore[no-any-return]
