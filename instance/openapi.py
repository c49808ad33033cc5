"""What the read-only JSON API returns and accepts, and the OpenAPI document made from it.

The API views build every response through the pydantic models below and read every query
parameter through the ``Param`` specs below; the OpenAPI document at /api/v1/openapi.json is
generated from the same models and specs. So the document cannot say one thing while the code
does another: changing a field or a bound changes both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from catalogue.commons import CommonsKind, Maturity
from catalogue.declarations import DeclarationKind
from catalogue.errors import N_
from catalogue.funding import Funding
from catalogue.improvements import ImprovementStatus
from catalogue.money import Money
from catalogue.organisations import SLUG, OrganisationKind
from catalogue.payment_links import MAX_LABEL, MAX_LINKS, MAX_URL, PaymentLink
from catalogue.queries import Sort
from catalogue.territories import DEPARTMENTS, NATIONAL, REGIONS

API_PREFIX = "/api/v1"
MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 20
# Far beyond any real catalogue, and small enough that the SQL offset never overflows.
MAX_PAGE = 100_000
MAX_NUMBER = 2**31 - 1
# No control characters in any text parameter: they are never meaningful and PostgreSQL refuses
# NUL outright. Written with \u escapes so that both JSON Schema (ECMA) and Python read it alike.
PRINTABLE = "^[^\\u0000-\\u001f\\u007f]*$"
SLUG_PATTERN = SLUG.pattern

# Drafts never leave the instance, so the API's statuses are the others.
PublicStatus = Literal["open", "funded", "in-progress", "delivered", "cancelled"]
PUBLIC_STATUSES: tuple[str, ...] = tuple(
    status.value for status in ImprovementStatus if status != ImprovementStatus.DRAFT
)
TERRITORIES: tuple[str, ...] = (
    NATIONAL,
    *(f"region:{code}" for code in REGIONS),
    *(f"department:{code}" for code in DEPARTMENTS),
)


# ---------------------------------------------------------------------------------------------
# Responses


class Model(BaseModel):
    """Every response object: no field the document does not list (additionalProperties false)."""

    model_config = ConfigDict(extra="forbid")


class Amount(Model):
    """Money exactly: integer cents, the currency, and the same amount as a decimal string."""

    cents: int = Field(description="The amount in cents (hundredths of the currency unit).")
    currency: str = Field(pattern="^[A-Z]{3}$", description="ISO 4217 code, such as EUR.")
    amount: str = Field(
        pattern=r"^-?[0-9]+\.[0-9]{2}$",
        description="The same amount as a decimal string with two decimals: 4000.00.",
    )

    @classmethod
    def of(cls, cents: int, currency: str) -> Amount:
        money = Money(cents, currency)
        return cls(cents=money.cents, currency=money.currency, amount=money.decimal_string())


class FundingProgress(Model):
    """How far an improvement is funded: pledges plus matches, against its budget."""

    budget: Amount
    pledged: Amount
    matched: Amount
    funded: Amount = Field(description="Pledged plus matched.")
    remaining: Amount = Field(description="What is still needed; never below zero.")
    percent: int = Field(ge=0, description="Whole percent funded, rounded down.")

    @classmethod
    def of(cls, funding: Funding) -> FundingProgress:
        currency = funding.currency
        return cls(
            budget=Amount.of(funding.budget_cents, currency),
            pledged=Amount.of(funding.pledged_cents, currency),
            matched=Amount.of(funding.matched_cents, currency),
            funded=Amount.of(funding.funded_cents, currency),
            remaining=Amount.of(funding.remaining_cents, currency),
            percent=funding.percent,
        )


class OrganisationRef(Model):
    """An organisation named from another object."""

    uri: str
    slug: str
    name: str


class CommonsRef(Model):
    """A commons named from another object."""

    uri: str
    slug: str
    name: str


class PaymentLinkOut(Model):
    """Where to give or pay (FEP-0ea0 on the fediverse): a label and a web address."""

    label: str = Field(max_length=MAX_LABEL, description="Plain text, never markup.")
    url: str = Field(
        max_length=MAX_URL, pattern="^https?://", description="An absolute http(s) address."
    )

    @classmethod
    def of(cls, link: PaymentLink) -> PaymentLinkOut:
        return cls(label=link.label, url=link.url)


PAYMENT_LINKS_DESCRIPTION = (
    f"Where to give or pay, as its maintainers (or its origin) set them; at most {MAX_LINKS}."
)


class CommonsSummary(Model):
    """A commons as the catalogue lists it."""

    uri: str = Field(description="The commons' stable global identifier.")
    origin: str | None = Field(description="The host it comes from; null when made here.")
    slug: str
    name: str
    kind: CommonsKind
    summary: str
    tags: list[str]
    licence: str | None = Field(description="An SPDX licence expression.")
    website: str | None
    repository: str | None
    logo: str | None = Field(description="The logo's absolute URL.")
    maturity: Maturity
    languages: list[str] = Field(description="ISO 639 language codes.")
    territory: str | None = Field(description="national, region:NN or department:NN.")
    uses_count: int = Field(ge=0, description="How many organisations use it.")
    interested_count: int = Field(ge=0, description="How many organisations are interested.")
    open_improvements: int = Field(ge=0, description="Improvements open for funding.")
    payment_links: list[PaymentLinkOut] = Field(
        max_length=MAX_LINKS, description=PAYMENT_LINKS_DESCRIPTION
    )
    created_at: datetime
    updated_at: datetime


class CommonsDetail(CommonsSummary):
    """A commons with its description and maintainers."""

    description: str = Field(description="Markdown source.")
    description_html: str = Field(description="The description rendered and sanitised.")
    maintainers: list[OrganisationRef]


class MilestoneOut(Model):
    position: int = Field(ge=1)
    title: str
    amount: Amount


class ImprovementOut(Model):
    """An improvement a commons needs, with its budget and how far it is funded."""

    uri: str
    origin: str | None
    number: int = Field(ge=1, description="Its number within its commons.")
    commons: CommonsRef
    title: str
    description: str = Field(description="Markdown source.")
    description_html: str
    status: PublicStatus
    budget: Amount
    funding: FundingProgress
    allow_overfunding: bool
    deadline: date | None
    provider: OrganisationRef | None = Field(description="The organisation doing the work.")
    milestones: list[MilestoneOut]
    payment_links: list[PaymentLinkOut] = Field(
        max_length=MAX_LINKS, description=PAYMENT_LINKS_DESCRIPTION
    )
    created_at: datetime
    updated_at: datetime


class OrganisationOut(Model):
    """An organisation: a tiers-lieu, a cooperative, a network, a funder…"""

    uri: str
    origin: str | None
    slug: str
    name: str
    kind: OrganisationKind
    description: str
    website: str | None
    territory: str | None
    created_at: datetime
    updated_at: datetime


class OrganisationDetail(OrganisationOut):
    """An organisation with what it uses, is interested in and maintains."""

    uses: list[CommonsRef]
    interested_in: list[CommonsRef]
    maintains: list[CommonsRef]


class DeclarationOut(Model):
    """An organisation saying it uses a commons, or is interested in it."""

    uri: str
    origin: str | None
    kind: DeclarationKind
    organisation: OrganisationRef
    commons: CommonsRef
    since: date | None = Field(description="Since when it is used (uses only).")
    satisfaction: int | None = Field(ge=1, le=5, description="From 1 to 5 (uses only).")
    comment: str
    created_at: datetime


class PageLinks(Model):
    self_: str = Field(alias="self", description="This page's absolute URL.")
    next: str | None
    prev: str | None

    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)


Item = TypeVar("Item")


class PageOf(Model, Generic[Item]):
    items: list[Item]
    page: int = Field(ge=1)
    per_page: int = Field(ge=1, le=MAX_PER_PAGE)
    total: int = Field(ge=0)
    pages: int = Field(ge=1)
    links: PageLinks


class CommonsList(PageOf[CommonsSummary]):
    """A page of commons."""


class ImprovementList(PageOf[ImprovementOut]):
    """A page of improvements."""


class OrganisationList(PageOf[OrganisationOut]):
    """A page of organisations."""


class DeclarationList(PageOf[DeclarationOut]):
    """A page of declarations."""


class ErrorOut(Model):
    """What every refused request gets."""

    error: str = Field(description="The HTTP status phrase, such as Bad Request.")
    detail: str = Field(description="What is wrong, in the reader's language.")
    parameter: str | None = Field(description="The parameter at fault, when there is one.")


# ---------------------------------------------------------------------------------------------
# Parameters


class ParameterError(ValueError):
    """A parameter is refused; ``message`` is an English msgid, ``params`` fill it."""

    def __init__(self, name: str, message: str, **params: Any) -> None:
        super().__init__(f"{name}: {message % params if params else message}")
        self.name = name
        self.message = message
        self.params = params


@dataclass(frozen=True)
class Param:
    """One query parameter: its OpenAPI description and how a raw value is read."""

    name: str
    description: str
    kind: Literal["integer", "string", "boolean"] = "string"
    default: Any = None
    minimum: int | None = None
    maximum: int | None = None
    enum: tuple[str, ...] = ()
    max_length: int | None = None
    pattern: str | None = None

    def schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": self.kind}
        if self.default is not None:
            schema["default"] = self.default
        if self.minimum is not None:
            schema["minimum"] = self.minimum
        if self.maximum is not None:
            schema["maximum"] = self.maximum
        if self.enum:
            schema["enum"] = list(self.enum)
        if self.kind == "string" and not self.enum:
            if self.max_length is not None:
                schema["maxLength"] = self.max_length
            schema["pattern"] = self.pattern or PRINTABLE
        return schema

    def document(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "in": "query",
            "required": False,
            "description": self.description,
            "schema": self.schema(),
        }

    def parse(self, raw: str | None) -> Any:
        """The value, its default when absent, or ParameterError naming the parameter."""
        if raw is None:
            return self.default
        if self.kind == "integer":
            return self._integer(raw)
        if self.kind == "boolean":
            if raw not in ("true", "false"):
                raise ParameterError(self.name, N_("Use true or false."))
            return raw == "true"
        if self.enum:
            if raw not in self.enum:
                raise ParameterError(
                    self.name, N_("Use one of: %(values)s."), values=", ".join(self.enum)
                )
            return raw
        if self.max_length is not None and len(raw) > self.max_length:
            raise ParameterError(self.name, N_("At most %(max)d characters."), max=self.max_length)
        if not re.search(self.pattern or PRINTABLE, raw):
            raise ParameterError(self.name, N_("This value is not allowed here."))
        return raw

    def _integer(self, raw: str) -> int:
        if not (raw.isascii() and raw.isdigit()):
            raise ParameterError(self.name, N_("Give a whole number."))
        # More digits than any bound can only be out of range (and int() of thousands of
        # digits is refused by Python itself).
        value = int(raw) if len(raw) <= 18 else 10**18
        low = self.minimum if self.minimum is not None else 0
        high = self.maximum if self.maximum is not None else 10**18
        if not low <= value <= high:
            raise ParameterError(
                self.name, N_("Give a whole number from %(min)d to %(max)d."), min=low, max=high
            )
        return value


PAGE = Param("page", "The page to return, from 1.", "integer", 1, 1, MAX_PAGE)
PER_PAGE = Param(
    "per_page", "How many items a page holds.", "integer", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE
)
COMMONS_FILTERS = (
    Param(
        "q",
        "Full-text search over name, summary, description and tags; accents are ignored.",
        max_length=200,
    ),
    Param("kind", "Only commons of this kind.", enum=tuple(k.value for k in CommonsKind)),
    Param("tag", "Only commons with this tag.", max_length=50),
    Param("maturity", "Only commons this mature.", enum=tuple(m.value for m in Maturity)),
    Param(
        "territory",
        "Only commons of this territory; a region includes its departments.",
        enum=TERRITORIES,
    ),
    Param("open_improvements", "Only commons with improvements open for funding.", "boolean"),
    Param(
        "sort",
        "used: most used first; recent: newest first; need: most in need of funds first; "
        "name: by name.",
        default=Sort.USED.value,
        enum=tuple(s.value for s in Sort),
    ),
)
IMPROVEMENT_FILTERS = (
    Param("status", "Only improvements with this status.", enum=PUBLIC_STATUSES),
    Param("commons", "Only the improvements of the commons with this slug.", pattern=SLUG_PATTERN),
)
ORGANISATION_FILTERS = (
    Param(
        "kind", "Only organisations of this kind.", enum=tuple(k.value for k in OrganisationKind)
    ),
)
DECLARATION_FILTERS = (
    Param("commons", "Only declarations about the commons with this slug.", pattern=SLUG_PATTERN),
    Param(
        "organisation",
        "Only declarations by the organisation with this slug.",
        pattern=SLUG_PATTERN,
    ),
    Param("kind", "uses or interested.", enum=tuple(k.value for k in DeclarationKind)),
)


# ---------------------------------------------------------------------------------------------
# Operations and the document


@dataclass(frozen=True)
class PathParam:
    name: str
    description: str
    schema: dict[str, Any]


SLUG_PARAM = PathParam("slug", "The commons' slug.", {"type": "string", "pattern": SLUG_PATTERN})
ORG_SLUG_PARAM = PathParam(
    "slug", "The organisation's slug.", {"type": "string", "pattern": SLUG_PATTERN}
)
NUMBER_PARAM = PathParam(
    "number",
    "The improvement's number within its commons.",
    {"type": "integer", "minimum": 1, "maximum": MAX_NUMBER},
)


@dataclass(frozen=True)
class Operation:
    """One GET endpoint: the views and the document both read this table."""

    operation_id: str
    path: str
    summary: str
    response: type[BaseModel] | None
    query: tuple[Param, ...] = ()
    path_params: tuple[PathParam, ...] = ()
    tags: tuple[str, ...] = ()


OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "listCommons",
        f"{API_PREFIX}/commons",
        "The catalogue: visible commons, filtered, searched and sorted.",
        CommonsList,
        (*COMMONS_FILTERS, PAGE, PER_PAGE),
        tags=("commons",),
    ),
    Operation(
        "getCommons",
        f"{API_PREFIX}/commons/{{slug}}",
        "One commons made on this instance.",
        CommonsDetail,
        path_params=(SLUG_PARAM,),
        tags=("commons",),
    ),
    Operation(
        "listImprovements",
        f"{API_PREFIX}/improvements",
        "Improvements (never drafts), newest first.",
        ImprovementList,
        (*IMPROVEMENT_FILTERS, PAGE, PER_PAGE),
        tags=("improvements",),
    ),
    Operation(
        "getImprovement",
        f"{API_PREFIX}/commons/{{slug}}/improvements/{{number}}",
        "One improvement of a commons.",
        ImprovementOut,
        path_params=(SLUG_PARAM, NUMBER_PARAM),
        tags=("improvements",),
    ),
    Operation(
        "listOrganisations",
        f"{API_PREFIX}/organisations",
        "Organisations, by name.",
        OrganisationList,
        (*ORGANISATION_FILTERS, PAGE, PER_PAGE),
        tags=("organisations",),
    ),
    Operation(
        "getOrganisation",
        f"{API_PREFIX}/organisations/{{slug}}",
        "One organisation of this instance, with what it uses and maintains.",
        OrganisationDetail,
        path_params=(ORG_SLUG_PARAM,),
        tags=("organisations",),
    ),
    Operation(
        "listDeclarations",
        f"{API_PREFIX}/declarations",
        "Who uses what, and who is interested: active declarations, newest first.",
        DeclarationList,
        (*DECLARATION_FILTERS, PAGE, PER_PAGE),
        tags=("declarations",),
    ),
    Operation(
        "getOpenAPI",
        f"{API_PREFIX}/openapi.json",
        "This document.",
        None,
        tags=("meta",),
    ),
)

MODELS: tuple[type[BaseModel], ...] = (
    CommonsList,
    CommonsDetail,
    ImprovementList,
    ImprovementOut,
    OrganisationList,
    OrganisationDetail,
    DeclarationList,
    ErrorOut,
)

REF = "#/components/schemas/{model}"


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _operation(operation: Operation) -> dict[str, Any]:
    parameters = [
        {
            "name": param.name,
            "in": "path",
            "required": True,
            "description": param.description,
            "schema": param.schema,
        }
        for param in operation.path_params
    ] + [param.document() for param in operation.query]
    if operation.response is None:
        ok = _json({"type": "object"}, "The OpenAPI document.")
    else:
        ok = _json(_ref(operation.response), operation.response.__doc__ or "OK")
    responses: dict[str, Any] = {"200": ok}
    if operation.query:
        responses["400"] = _json(_ref(ErrorOut), "A query parameter is wrong; it is named.")
    if operation.path_params:
        responses["404"] = _json(_ref(ErrorOut), "Nothing public has this address.")
    document: dict[str, Any] = {
        "operationId": operation.operation_id,
        "summary": operation.summary,
        "tags": list(operation.tags),
        "responses": responses,
    }
    if parameters:
        document["parameters"] = parameters
    return document


def build_document(base_url: str, title: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the API, generated from the models and parameter specs."""
    _, definitions = models_json_schema(
        [(model, "serialization") for model in MODELS], ref_template=REF
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"{title} API",
            "version": "1",
            "description": (
                "Read-only access to this Terreau instance's public catalogue: commons, "
                "improvements and their funding, organisations and who uses what. Amounts are "
                "integer cents with their currency; times are ISO 8601 in UTC."
            ),
        },
        "servers": [{"url": base_url}],
        "paths": {operation.path: {"get": _operation(operation)} for operation in OPERATIONS},
        "components": {"schemas": definitions.get("$defs", {})},
    }
