"""Lambda entry points: ``api.lambda_handler`` (HTTP API) and ``blur.lambda_handler`` (SQS worker)."""
