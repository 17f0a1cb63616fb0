"""`sam local invoke` of the template's functions in Lambda containers, against the local stack."""
