"""Billing: on-demand GPU-seconds, reserved capacity, serverless per-token prices.

Pure functions over replica intervals and token counts; :func:`sim.run`
calls them and puts the lines in ``Result.billing``.  Rules and sources:
``docs/billing.md``.
"""

from sim.billing.ondemand import LINE_COLUMNS, bill
from sim.billing.serverless import serverless_cost
from sim.billing.spec import BillingSpec, ServerlessPrice

__all__ = ["LINE_COLUMNS", "BillingSpec", "ServerlessPrice", "bill", "serverless_cost"]
