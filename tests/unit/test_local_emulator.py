"""The local moto server keeps DynamoDB's promise that a conditional write is atomic."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from botocore.exceptions import ClientError

from photoveil.local.account import client
from photoveil.local.emulator import QuietMotoRequestHandler, moto_app
from photoveil.local.serving import ServerThread, listen, origin

RACERS = 16


def test_racing_conditional_updates_have_exactly_one_winner_as_on_aws() -> None:
    sock = listen("127.0.0.1", 0)
    endpoint = origin(sock)  # before the server takes the socket over
    server = ServerThread(moto_app(), sock, "moto-race", QuietMotoRequestHandler)
    server.start()
    try:
        dynamodb = client("dynamodb", endpoint)
        table = "photoveil-race-test"
        dynamodb.create_table(
            TableName=table,
            AttributeDefinitions=[{"AttributeName": "jobId", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "jobId", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        for round_ in range(30):
            start = threading.Barrier(RACERS)

            def claim(racer: int, job: str = f"job-{round_}", start: threading.Barrier = start) -> bool:
                start.wait()
                try:
                    dynamodb.update_item(
                        TableName=table,
                        Key={"jobId": {"S": job}},
                        UpdateExpression="SET winner = :me",
                        ConditionExpression="attribute_not_exists(winner)",
                        ExpressionAttributeValues={":me": {"N": str(racer)}},
                    )
                except ClientError as error:
                    assert error.response["Error"]["Code"] == "ConditionalCheckFailedException"
                    return False
                return True

            with ThreadPoolExecutor(RACERS) as pool:
                assert sum(pool.map(claim, range(RACERS))) == 1, f"round {round_}"
    finally:
        server.stop()
