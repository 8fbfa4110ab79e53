"""A LangGraph agent gated by Tollgate: its graph proposes an invoice adjustment, the gate node
submits it with LangGraph's HumanInterrupt, and on a hold the graph pauses in interrupt() until a
person accepts, edits, answers or ignores it in Tollgate's console; then it resumes with
Command(resume=<Tollgate's HumanResponse>) and applies the final output, or reads the feedback.

    python examples/langgraph_agent.py --url http://127.0.0.1:8000 --token tg_... --confidence 0.6

Create a token with: python manage.py create_token example-agent --role agent \
    --workflows billing.invoice_adjustment
Needs langgraph (pip install "tollgate[langgraph]") and this repository on the path.
"""

import argparse
import json
import os
import sys
import uuid
from pathlib import Path
from typing import TypedDict

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph

from exceptions_app.client import TollgateClient
from exceptions_app.integrations.langgraph import ReviewNotResolved, gate_node, human_interrupt, resume_command

WORKFLOW = "billing.invoice_adjustment"


class InvoiceState(TypedDict, total=False):
    invoice: dict
    adjustment: dict
    confidence: float
    review: dict
    outcome: str


def propose_adjustment(state: InvoiceState) -> dict:
    """Stands in for the model call that drafts the adjustment and says how sure it is."""
    invoice = state["invoice"]
    adjustment = {
        "invoice_id": invoice["id"],
        "type": "credit",
        "amount": 240.0,
        "currency": invoice["currency"],
        "reason": "dispute",
    }
    return {"adjustment": adjustment}


def review_request(state: InvoiceState) -> dict:
    """What the gate node submits: the HumanInterrupt, the confidence, and the captured input."""
    request = human_interrupt(
        "adjust_invoice",
        state["adjustment"],
        description=f"Credit {state['adjustment']['amount']} on invoice {state['invoice']['id']} (customer dispute).",
        allow_ignore=True,
        allow_respond=True,
        allow_edit=True,
        allow_accept=True,
    )
    return {"request": request, "confidence": state["confidence"], "input": state["invoice"]}


def apply_adjustment(state: InvoiceState) -> dict:
    review = state["review"]
    if review["final_output"] is not None:
        return {"outcome": f"applied {json.dumps(review['final_output'], sort_keys=True)}"}
    if review["response"]["type"] == "response":
        return {"outcome": f"not applied; the reviewer says: {review['response']['args']}"}
    return {"outcome": f"not applied ({review['verdict']}, {review['response']['type']})"}


def build_graph(tollgate: TollgateClient):
    graph = StateGraph(InvoiceState)
    graph.add_node("propose", propose_adjustment)
    graph.add_node("gate", gate_node(tollgate, WORKFLOW, propose=review_request))
    graph.add_node("apply", apply_adjustment)
    graph.add_edge(START, "propose")
    graph.add_edge("propose", "gate")
    graph.add_edge("gate", "apply")
    graph.add_edge("apply", END)
    # Any checkpointer: the graph's state must outlive the pause (Postgres or SQLite in production).
    return graph.compile(checkpointer=InMemorySaver())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument(
        "--token", default=os.environ.get("TOLLGATE_TOKEN"), required="TOLLGATE_TOKEN" not in os.environ
    )
    parser.add_argument("--confidence", type=float, default=0.6, help="below the policy's 0.90: held for a person")
    parser.add_argument("--wait", type=float, default=600, help="seconds to wait for the person")
    parser.add_argument("--thread", default=None, help="the graph's thread id (Tollgate's correlation id)")
    arguments = parser.parse_args()

    with TollgateClient(arguments.url, arguments.token) as tollgate:
        graph = build_graph(tollgate)
        config = {"configurable": {"thread_id": arguments.thread or f"invoice-{uuid.uuid4().hex[:8]}"}}
        invoice = {"id": "INV-7001", "currency": "EUR", "total": 900.0}
        result = graph.invoke({"invoice": invoice, "confidence": arguments.confidence}, config)
        for paused in result.get("__interrupt__", ()):
            exception_id = paused.value["tollgate"]["exception_id"]
            print(f"paused: held as Tollgate exception {exception_id}; waiting for a person", flush=True)
        try:
            while (command := resume_command(tollgate, result, timeout=arguments.wait)) is not None:
                print(f"resuming with: {json.dumps(command.resume, sort_keys=True)}")
                result = graph.invoke(command, config)
        except ReviewNotResolved as error:
            print(f"still paused: {error}; resume the thread {config['configurable']['thread_id']} later")
            return 2
    print(f"verdict: {result['review']['verdict']}")
    print(result["outcome"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
