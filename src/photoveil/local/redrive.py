"""Move messages from BlurDLQ back to BlurQueue, locally or on AWS.

AWS: SQS ``StartMessageMoveTask`` (the console's "DLQ redrive"). moto 5.2.5 does not implement it, so
for the local stack the move is receive -> send (same body and attributes) -> delete, one batch at a
time; a message is deleted from the DLQ only after its copy was sent.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import boto3

from photoveil.local.account import Credentials, client

EXIT_NOT_RUNNING = 4


def move_messages(sqs: Any, source_url: str, destination_url: str) -> int:
    """Receive -> send -> delete until the source queue is empty; returns how many moved."""
    moved = 0
    while True:
        messages = sqs.receive_message(
            QueueUrl=source_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            return moved
        sent = sqs.send_message_batch(
            QueueUrl=destination_url,
            Entries=[
                {
                    "Id": str(i),
                    "MessageBody": m["Body"],
                    **({"MessageAttributes": m["MessageAttributes"]} if m.get("MessageAttributes") else {}),
                }
                for i, m in enumerate(messages)
            ],
        )
        ok = {int(entry["Id"]) for entry in sent.get("Successful", [])}
        done = [m for i, m in enumerate(messages) if i in ok]
        if done:
            sqs.delete_message_batch(
                QueueUrl=source_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        moved += len(done)
        if len(done) < len(messages):
            raise RuntimeError(f"could not send {len(messages) - len(done)} message(s): {sent.get('Failed')}")


def redrive_local(data_dir: Path) -> int:
    """`photoveil local redrive`: DLQ -> queue on the running local stack (found via DATA_DIR/stack.json)."""
    state_file = data_dir / "stack.json"
    if not state_file.is_file():
        print(
            f"photoveil local redrive: no running local stack ({state_file} is missing): start `make run`",
            file=sys.stderr,
        )
        return EXIT_NOT_RUNNING
    state = json.loads(state_file.read_text())
    sqs = client("sqs", state["moto"], Credentials.from_json(state["credentials"]))
    moved = move_messages(sqs, state["dlqUrl"], state["queueUrl"])
    print(f"moved {moved} message(s) from {state['dlqUrl']} back to {state['queueUrl']}")
    return 0


def redrive_aws(stack_name: str, region: str | None = None) -> int:
    """Start an SQS message move task from the stack's BlurDLQ to BlurQueue (resolved by logical id)."""
    session = boto3.session.Session(region_name=region)
    cfn, sqs = session.client("cloudformation"), session.client("sqs")
    physical = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cfn.describe_stack_resources(StackName=stack_name)["StackResources"]
    }

    def arn(logical_id: str) -> str:
        url = physical[logical_id]  # a queue's physical id is its URL
        return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    task = sqs.start_message_move_task(SourceArn=arn("BlurDLQ"), DestinationArn=arn("BlurQueue"))
    print(
        f"started move task {task['TaskHandle']}: BlurDLQ -> BlurQueue "
        f"(aws sqs list-message-move-tasks --source-arn {arn('BlurDLQ')})"
    )
    return 0


if __name__ == "__main__":
    # scripts/redrive.sh: python -m photoveil.local.redrive aws STACK [REGION] | local [DATA_DIR]
    mode = sys.argv[1] if len(sys.argv) > 1 else "local"
    if mode == "aws":
        raise SystemExit(redrive_aws(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None))
    raise SystemExit(redrive_local(Path(sys.argv[2] if len(sys.argv) > 2 else ".local")))
