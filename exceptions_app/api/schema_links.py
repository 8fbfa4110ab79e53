"""OpenAPI links: which response hands which id to the next operation (a drf-spectacular postprocessing hook).

They tell a client reading the schema how the operations chain (submit, then poll the held item;
claim the next item, then resolve it), and let schemathesis walk those chains statefully.
"""

ITEM_FROM_DECISION = "$response.body#/exception/id"
ITEM = "$response.body#/id"
NAME = "$response.body#/name"

# (operation, status) -> {link name: (target operation, {parameter: runtime expression})}
LINKS = {
    ("decision_submit", "200"): {
        "GetHeldItem": ("exception_get", {"item_id": ITEM_FROM_DECISION}),
        "ClaimHeldItem": ("exception_claim", {"item_id": ITEM_FROM_DECISION}),
        "CancelHeldItem": ("exception_cancel", {"item_id": ITEM_FROM_DECISION}),
    },
    ("exception_report", "201"): {
        "GetReportedItem": ("exception_get", {"item_id": ITEM}),
        "ClaimReportedItem": ("exception_claim", {"item_id": ITEM}),
        "CancelReportedItem": ("exception_cancel", {"item_id": ITEM}),
    },
    ("queue_claim_next", "200"): {
        "ResolveClaimedItem": ("exception_resolve", {"item_id": ITEM}),
        "ReleaseClaimedItem": ("exception_release", {"item_id": ITEM}),
        "SnoozeClaimedItem": ("exception_snooze", {"item_id": ITEM}),
        "CommentOnClaimedItem": ("exception_comment_add", {"item_id": ITEM}),
    },
    ("exception_claim", "200"): {
        "ResolveItem": ("exception_resolve", {"item_id": ITEM}),
        "RenewItem": ("exception_renew", {"item_id": ITEM}),
        "ReleaseItem": ("exception_release", {"item_id": ITEM}),
        "ReadTimeline": ("exception_timeline", {"item_id": ITEM}),
    },
    ("exception_resolve", "200"): {
        "GetResolvedItem": ("exception_get", {"item_id": ITEM}),
    },
    ("queue_put", "200"): {"GetQueue": ("queue_get", {"name": NAME})},
    ("queue_put", "201"): {
        "GetNewQueue": ("queue_get", {"name": NAME}),
        "ClaimFromNewQueue": ("queue_claim_next", {"name": NAME}),
    },
    ("workflow_put", "201"): {"GetNewWorkflow": ("workflow_get", {"name": NAME})},
    ("workflow_put", "200"): {"GetWorkflow": ("workflow_get", {"name": NAME})},
}


def add_links(result: dict, generator, request, public) -> dict:
    """Attach ``LINKS`` to the responses they start from; an operation or status that is gone is skipped."""
    responses = {
        (operation.get("operationId"), status): response
        for path_item in result.get("paths", {}).values()
        for operation in path_item.values()
        for status, response in operation.get("responses", {}).items()
    }
    for key, links in LINKS.items():
        if key in responses:
            responses[key]["links"] = {
                name: {"operationId": target, "parameters": parameters} for name, (target, parameters) in links.items()
            }
    return result
