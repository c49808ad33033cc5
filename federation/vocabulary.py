"""Terreau's own ActivityStreams terms: a JSON-LD context bundled with the code.

The context is read from ``terreau.jsonld`` beside this module and served by every instance at
``/ns/terreau``; documents name that address. It is never fetched at run time: we read commons
documents as plain JSON with the compact names below, as every fediverse server does, so a
peer's context being down or different never changes what a document means to us.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from federation.context import FederationConfig

CONTEXT_FILE = Path(__file__).with_name("terreau.jsonld")
CONTEXT_PATH = "/ns/terreau"
NAMESPACE = "https://w3id.org/terreau/ns#"
VALUEFLOWS = "https://w3id.org/valueflows/ont/vf#"
CONTEXT_MEDIA_TYPE = "application/ld+json"

# The compact names of our terms, as they appear in documents.
COMMONS_KIND = "commonsKind"
MATURITY = "maturity"
LICENCE = "licence"
LANGUAGES = "languages"
TERRITORY = "territory"
WEBSITE = "website"
REPOSITORY = "repository"
USES_COUNT = "usesCount"
INTERESTED_COUNT = "interestedCount"
# An improvement (an Article): amounts are integer cents of ``currency``, never decimals.
BUDGET = "budget"
FUNDED_AMOUNT = "fundedAmount"
CURRENCY = "currency"
STATUS = "status"
ALLOW_OVERFUNDING = "allowOverfunding"
DEADLINE = "deadline"
COMMONS_TERMS = (
    COMMONS_KIND, MATURITY, LICENCE, LANGUAGES, TERRITORY, WEBSITE, REPOSITORY, USES_COUNT,
    INTERESTED_COUNT,
)  # fmt: skip
IMPROVEMENT_TERMS = (BUDGET, FUNDED_AMOUNT, CURRENCY, STATUS, ALLOW_OVERFUNDING, DEADLINE)
TERMS = COMMONS_TERMS + IMPROVEMENT_TERMS

# Declarations: an organisation says it uses a commons, or is interested in it. Our own types,
# not ``Like``: a use has a date, a satisfaction, and counts towards the commons' figures.
USE = "Use"
INTEREST = "Interest"
SINCE = "since"
SATISFACTION = "satisfaction"
# An organisation actor's kind (tiers-lieu, cae…), so another instance can store its copy.
ORGANISATION_KIND = "organisationKind"
DECLARATION_TERMS = (USE, INTEREST, SINCE, SATISFACTION, ORGANISATION_KIND)

# Pledges: a ValueFlows Commitment (FEP-0837's terms, inlined in our context as ValueFlows has
# no usable context of its own), with our terms for the improvement and the integer amount.
# ``currency`` and ``status`` are the improvement's terms, with the pledge's own values.
OM2 = "http://www.ontology-of-units-of-measure.org/resource/om-2/"
ACTION = "action"
PROVIDER = "provider"
RECEIVER = "receiver"
RESOURCE_QUANTITY = "resourceQuantity"
HAS_UNIT = "hasUnit"
HAS_NUMERICAL_VALUE = "hasNumericalValue"
IMPROVEMENT = "improvement"
AMOUNT_CENTS = "amountCents"
#: Compact name → IRI (prefixed), as terreau.jsonld defines them.
PLEDGE_TERMS = {
    "Commitment": "vf:Commitment",
    ACTION: "vf:action",
    PROVIDER: "vf:provider",
    RECEIVER: "vf:receiver",
    RESOURCE_QUANTITY: "vf:resourceQuantity",
    HAS_UNIT: "om2:hasUnit",
    HAS_NUMERICAL_VALUE: "om2:hasNumericalValue",
    IMPROVEMENT: "terreau:improvement",
    AMOUNT_CENTS: "terreau:amountCents",
}
# Matches: a Commitment by the funder organisation that names the pledge it matches and the
# program (the funder's scheme) that made it.
MATCHES = "matches"
PROGRAM = "program"
MATCHING_PROGRAM = "MatchingProgram"
RATIO = "ratio"  # what a program adds to each unit pledged: a decimal string, "1", "0.5"
MATCH_TERMS = {
    MATCHES: "terreau:matches",
    PROGRAM: "terreau:program",
    MATCHING_PROGRAM: "terreau:MatchingProgram",
    RATIO: "terreau:ratio",
}


def context_url(config: FederationConfig) -> str:
    """Where this instance serves the context: each instance names its own copy, so a reader
    that does dereference it never depends on another server being up."""
    return f"{config.base_url}{CONTEXT_PATH}"


@cache
def bundled_context() -> bytes:
    """The context file exactly as shipped (read once per process)."""
    return CONTEXT_FILE.read_bytes()
