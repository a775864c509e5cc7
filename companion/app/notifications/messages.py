"""What each kind of notification says (gettext message ids; `%(name)s` placeholders from its params)."""


def N_(text: str) -> str:
    """Mark text for extraction; it is translated when shown, in the reader's language."""
    return text


# kind -> (subject / title, body)
MESSAGES: dict[str, tuple[str, str]] = {
    "claim": (N_("Your interlock portal account"),
              N_("An account was opened for you. Follow the link to set your password and sign in.")),
    "reset": (N_("Reset your portal password"),
              N_("Someone asked to reset your password. If it was you, follow the link within %(minutes)s "
                 "minutes. If not, ignore this message: your password stays as it is.")),
    "email-verify": (N_("Confirm your new email address"),
                     N_("Follow the link to make %(email)s your sign-in address. Until you do, you sign in "
                        "with your current address.")),
    "email-changed": (N_("Your sign-in email changed"),
                      N_("Your sign-in address is now %(email)s. If you did not make this change, call us.")),
    "password-changed": (N_("Your password changed"),
                         N_("Your portal password was changed. If you did not do this, reset it now.")),
    "code-issued": (N_("Unlock code issued"),
                    N_("An unlock code was issued for device %(device)s. It is valid until %(until)s.")),
    "fee-paid": (N_("Reset fee received"),
                 N_("We received the violation reset fee for device %(device)s. The clear is on its way to "
                    "the handset; it arrives at the handset's next sync.")),
    "clear-applied": (N_("Lockout cleared"),
                      N_("The handset %(device)s applied the remote clear. A breath test is still needed to "
                         "start.")),
    "fee-refunded": (N_("Reset fee refunded"),
                     N_("The lockout on device %(device)s ended before the paid clear reached the handset, so "
                        "the clear was not needed: the reset fee of %(amount)s was refunded to your card.")),
    "clear-failed": (N_("Remote clear not applied"),
                     N_("The remote clear for device %(device)s was %(status)s. Call us and we will help.")),
    "lockout": (N_("Handset locked out"),
                N_("The handset %(device)s reported a lockout: %(cause)s.")),
    "payment-due": (N_("Payment due soon"),
                    N_("Your next payment of %(amount)s is due on %(date)s.")),
    "receipt": (N_("Payment receipt"),
                N_("We received your payment of %(amount)s on %(date)s. Reference: %(reference)s.")),
    "payment-declined": (N_("Payment declined"),
                         N_("Your payment of %(amount)s was declined: %(reason)s %(retry)s")),
    "card-expiring": (N_("Your card expires before your next payment"),
                      N_("The card ending %(last4)s that pays automatically expires before your payment due on "
                         "%(date)s. Add a new card so the payment is not missed.")),
}

# kinds a driver may turn off for email (security messages always go out)
OPTIONAL_EMAIL = ("code-issued", "fee-paid", "clear-applied", "clear-failed", "lockout", "payment-due")
# receipts, declines and an expiring auto-pay card always go out (billing/worker.py, billing/services.py)

# service (companion/app/service): appointments, module shipments, the program's end
MESSAGES.update({
    "appointment-booked": (N_("Service visit booked"),
                           N_("Your %(what)s visit is booked at %(center)s on %(when)s (the center's local "
                              "time).")),
    "appointment-changed": (N_("Service visit moved"),
                            N_("Your %(what)s visit is now at %(center)s on %(when)s (the center's local time).")),
    "appointment-reminder": (N_("Service visit soon"),
                             N_("Reminder: your %(what)s visit is at %(center)s on %(when)s (the center's local "
                                "time). To change it, call the center.")),
})
MESSAGES.update({
    "shipment-shipped": (N_("Your new module has shipped"),
                         N_("The replacement module for %(device)s is on its way: tracking number %(tracking)s. "
                            "Send the expired module back with return label %(label)s.")),
    "shipment-late": (N_("Module replacement late"),
                      N_("The replacement module for %(device)s has not been delivered and the module expires "
                         "on %(date)s (tracking %(tracking)s). Call us.")),
    "module-unreturned": (N_("Module not returned"),
                          N_("The expired module of %(device)s was not returned within %(days)s days (return "
                             "label %(label)s). Your account is out of compliance and no further module ships "
                             "until it is back.")),
})
MESSAGES.update({
    "final-report": (N_("Final compliance report"),
                     N_("The ignition interlock program of %(driver)s ended on %(date)s. The final compliance "
                        "report is attached to the driver's record.")),
    "program-ended": (N_("Your program has ended"),
                      N_("Your program ended on %(date)s. Automatic payments and reminders have stopped; your "
                         "compliance certificate is in your documents and the final report was sent to your "
                         "monitoring authority. We will call you to schedule the removal.")),
})
