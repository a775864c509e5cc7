"""Billing: the ledger of charges and payments, the payment gateway (a sandbox by default), payment methods,
frequency, auto-pay, pay now, reset and code fees, history, invoices and agreements."""
