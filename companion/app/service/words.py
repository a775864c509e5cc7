"""Words the service pages show from data (a visit's kind, a status, a weekday, a record filter), marked for
the catalogs; the templates translate them with `_(value)`."""

from companion.app.notifications.messages import N_

WORDS = (
    # visit kinds (service.models.SERVICES)
    N_("calibration"), N_("inspection"), N_("installation"), N_("removal"), N_("vehicle-swap"),
    # appointment statuses
    N_("requested"), N_("booked"), N_("done"), N_("cancelled"), N_("declined"), N_("missed"),
    # shipment statuses
    N_("created"), N_("shipped"), N_("delivered"), N_("returned"), N_("lost"),
    # dispute statuses
    N_("open"), N_("upheld"), N_("rejected"),
    # weekdays (service.models.WEEKDAYS)
    N_("mon"), N_("tue"), N_("wed"), N_("thu"), N_("fri"), N_("sat"), N_("sun"),
    # record filters (records.timeline.KINDS)
    N_("tests"), N_("retests"), N_("violations"), N_("lockouts"), N_("clears"),
)
