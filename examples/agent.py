"""An example agent: proposes invoice adjustments, sends each through the gate, waits for a person
on the held ones, and resumes with whatever was decided.

    python examples/agent.py --url http://127.0.0.1:8000 --token tg_... --count 5

Create a token with: python manage.py create_token example-agent --role agent \
    --workflows billing.invoice_adjustment
"""

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from exceptions_app.client import TollgateClient, TollgateError

WORKFLOW = "billing.invoice_adjustment"


def propose(number: int, rng: random.Random) -> tuple[dict, float]:
    """What a model might propose, with its confidence."""
    amount = round(rng.choice([rng.uniform(20, 900), rng.uniform(900, 20_000)]), 2)
    output = {
        "invoice_id": f"INV-{5000 + number}",
        "type": rng.choice(["credit", "refund", "rerate"]),
        "amount": amount,
        "currency": "EUR",
        "reason": "customer dispute",
    }
    return output, round(rng.uniform(0.55, 0.99), 2)


def resume(invoice: str, outcome: str, output: dict | None) -> None:
    print(f"  resume {invoice}: {outcome}" + (f" -> amount {output['amount']}" if output else ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--token", required=True)
    parser.add_argument("--count", type=int, default=5)
    parser.add_argument("--wait", type=float, default=600, help="seconds to wait for each held item")
    arguments = parser.parse_args()
    rng = random.Random()
    with TollgateClient(arguments.url, arguments.token) as tollgate:
        for number in range(arguments.count):
            output, confidence = propose(number, rng)
            invoice = output["invoice_id"]
            try:
                decision = tollgate.submit(
                    WORKFLOW,
                    output=output,
                    confidence=confidence,
                    input={"invoice_total": 25_000.0, "currency": "EUR"},
                    correlation_id=f"example-{invoice}",
                )
            except TollgateError as error:
                print(f"{invoice}: refused ({error})")
                continue
            print(f"{invoice}: {decision['verdict']} (confidence {confidence})")
            if decision["verdict"] == "proceed":
                resume(invoice, "proceed", output)
            elif decision["verdict"] == "reject":
                resume(invoice, "rejected by the gate", None)
            else:
                item = tollgate.wait(decision["exception"]["id"], timeout=arguments.wait)
                resolution = item["resolution"] or {}
                resume(invoice, resolution.get("outcome", item["status"]), resolution.get("final_output"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
