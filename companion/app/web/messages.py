"""Problem kinds in the words a form shows (gettext ids)."""

from companion.app.notifications.messages import N_

_WORDS = {
    "bad-sign-in": N_("The email (or customer id) or the password is not right."),
    "throttled": N_("Too many attempts. Wait a few minutes and try again."),
    "invalid-email": N_("This is not an email address."),
    "weak-password": N_("A password needs at least 8 characters and at least one number."),
    "wrong-password": N_("The current password is not right."),
    "same-password": N_("The new password must differ from the current one."),
    "same-email": N_("This is already your email address."),
    "email-taken": N_("This email address cannot be used."),
    "bad-token": N_("This link is not valid any more (used, expired or mistyped). Ask for a new one."),
    "csrf": N_("The form expired. Reload the page and try again."),
    "code-limit": N_("The unlock codes for this service period are used up."),
    "code-fee": N_("An unlock code has a fee on your program: buy it on the code page."),
    "code-free": N_("Unlock codes are free on your program."),
    "codes-not-allowed": N_("Your program does not allow unlock codes."),
    "no-lockout": N_("The handset has not reported a violation lockout, so there is nothing to clear."),
    "not-an-interlock": N_("This device takes no unlock codes or clears."),
    "not-found": N_("Not found."),
    "too-long": N_("A field is too long."),
    "invalid-phone": N_("A phone number has 7 to 20 digits, spaces or ()+-."),
    "mismatch": N_("The two passwords are not the same."),
    "card-brand": N_("We accept Visa and Mastercard only."),
    "expired-card": N_("This card has expired: use another card."),
    "invalid_number": N_("The card number is not valid: please check it."),
    "invalid_expiry": N_("The expiry date is not valid."),
    "expired_card": N_("This card has expired: use another card."),
    "invalid_cvc": N_("The security code is 3 or 4 digits."),
    "invalid-token": N_("The card could not be read. Enter it again."),
    "duplicate": N_("This card is saved already."),
    "invalid-amount": N_("Enter an amount more than zero and no more than the balance, in dollars and cents."),
    "nothing-overdue": N_("Nothing is overdue."),
    "balance-moved": N_("Your balance changed since this page was shown, so nothing was charged. Check the "
                        "amount below and pay again."),
    "payment-in-progress": N_("Another payment of your balance is being processed, so nothing was charged. Look "
                              "at your balance again in a minute."),
    "fee-paid": N_("The reset fee for this lockout is paid already."),
    "no-card": N_("Add a card first."),
    "idempotency-conflict": N_("This payment was already submitted. Reload the page to start a new one."),
    # service (companion/app/service, companion/app/records)
    "invalid-zip": N_("A ZIP code is 5 digits."),
    "unknown-zip": N_("There is no such US ZIP code."),
    "slot-full": N_("That time has just been taken. Choose another."),
    "already-booked": N_("A visit of this kind is booked already. Reschedule or cancel it first."),
    "past-time": N_("That time is in the past."),
    "too-far": N_("That date is too far ahead."),
    "outside-hours": N_("The center has no appointment at that time. Choose one of its free times."),
    "not-offered": N_("This center does not offer that service."),
    "request-only": N_("Installations, removals and vehicle swaps are scheduled by our staff: send a request."),
    "already-requested": N_("A request of this kind is open already."),
    "closed": N_("This can no longer be changed."),
    "bad-file-type": N_("A document must be a PDF, JPEG or PNG file."),
    "empty-file": N_("Choose a file."),
    "too-large": N_("The file is too large."),
    "already-disputed": N_("This event is disputed already."),
    "bad-move": N_("A shipment cannot move to that status."),
    "invalid-hours": N_("Opening hours are HH:MM, opening before closing."),
}
GENERIC = N_("Something in the form is not right. Check it and try again.")


def for_problem(kind: str) -> str:
    """The message id for a problem kind."""
    return _WORDS.get(kind, GENERIC)
