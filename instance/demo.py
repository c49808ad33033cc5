"""A realistic demo data set: a tiers-lieux network, a CAE federation and a national funder.

Loading is idempotent: what already exists (by slug or email) is left as it is, so ``make run``
can load it at every start. Later issues add commons, improvements and pledges here.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from instance.accounts import Account, create_admin, find_by_email, sign_up
from instance.memberships import (
    MemberRole,
    Membership,
    create_organisation,
    get_local_organisation,
    membership_of,
)

DEMO_ADMIN_EMAIL = "admin@terreau.example"


@dataclass(frozen=True)
class DemoOrganisation:
    slug: str
    name: str
    kind: str
    territory: str
    description: str
    website: str = ""
    members: tuple[str, ...] = ()


PEOPLE = {
    "claire@terreau.example": "Claire Martin",
    "thomas@terreau.example": "Thomas Kaczmarek",
    "amina@terreau.example": "Amina Benali",
    "louis@terreau.example": "Louis Perrin",
    "sophie@terreau.example": "Sophie Garnier",
}

ORGANISATIONS = [
    DemoOrganisation(
        "france-tiers-lieux",
        "France Tiers-Lieux",
        "funder",
        "national",
        "The national association of tiers-lieux. This autumn it matches every euro a place "
        "gives to a commons with one more euro, up to 500 € per place.",
        "https://francetierslieux.fr",
        ("sophie@terreau.example",),
    ),
    DemoOrganisation(
        "region-aura",
        "Région Auvergne-Rhône-Alpes",
        "public-body",
        "region:84",
        "The Region funds some building blocks directly and adds one euro on software commons.",
    ),
    DemoOrganisation(
        "reseau-tl-aura",
        "Réseau des tiers-lieux d'Auvergne-Rhône-Alpes",
        "network",
        "region:84",
        "The regional network of tiers-lieux: training, shared tools and mutual help.",
        members=("amina@terreau.example",),
    ),
    DemoOrganisation(
        "fabrique-du-coin",
        "La Fabrique du Coin",
        "tiers-lieu",
        "department:69",
        "A fablab and coworking space in an old printing works in Lyon: 40 residents, "
        "a wood workshop and a repair café every Saturday.",
        members=("amina@terreau.example", "louis@terreau.example"),
    ),
    DemoOrganisation(
        "hangar-partage",
        "Le Hangar Partagé",
        "tiers-lieu",
        "department:44",
        "A former boat shed in Nantes turned into workshops, a canteen and a materials library.",
    ),
    DemoOrganisation(
        "grange-numerique",
        "La Grange Numérique",
        "tiers-lieu",
        "department:23",
        "A rural tiers-lieu in the Creuse: digital help desk, coworking and a community kitchen.",
    ),
    DemoOrganisation(
        "moulin-des-possibles",
        "Le Moulin des Possibles",
        "tiers-lieu",
        "department:07",
        "An old silk mill in Ardèche, renovated with open-source building plans.",
    ),
    DemoOrganisation(
        "atelier-des-communs",
        "L'Atelier des Communs",
        "tiers-lieu",
        "department:35",
        "A third place in Rennes hosted by a CAE: coworking, a print shop and a tool library.",
        members=("claire@terreau.example",),
    ),
    DemoOrganisation(
        "cooperer-pour-entreprendre",
        "Coopérer pour Entreprendre",
        "network",
        "national",
        "A national federation of business and employment cooperatives (CAE). Its members "
        "co-fund the software they share, such as YesWiki.",
        "https://www.cooperer.coop",
        ("claire@terreau.example", "thomas@terreau.example"),
    ),
    DemoOrganisation(
        "elan-cooperatif",
        "Élan Coopératif",
        "cae",
        "department:33",
        "A CAE in Bordeaux with 120 entrepreneur-employees, from web developers to carpenters.",
        members=("thomas@terreau.example",),
    ),
    DemoOrganisation(
        "terre-d-entreprendre",
        "Terre d'Entreprendre",
        "cae",
        "department:35",
        "A CAE in Brittany that runs L'Atelier des Communs.",
        members=("claire@terreau.example",),
    ),
    DemoOrganisation(
        "artisans-du-lien",
        "Artisans du Lien",
        "cae",
        "department:13",
        "A CAE in Marseille for craft and building trades.",
    ),
    DemoOrganisation(
        "association-yeswiki",
        "Association YesWiki",
        "association",
        "national",
        "The association that looks after YesWiki, the wiki many tiers-lieux and CAEs use.",
        "https://yeswiki.net",
    ),
]


@dataclass
class DemoResult:
    admin_email: str
    admin_password: str
    organisations_created: int
    people_created: int


async def load_demo(
    session: AsyncSession, base_url: str, admin_password: str | None = None
) -> DemoResult:
    """Load the demo set; the admin's password is reset and returned so it can be printed."""
    password = admin_password or secrets.token_urlsafe(12)
    admin, _ = await create_admin(session, DEMO_ADMIN_EMAIL, password, "Demo admin")

    people_created = 0
    people: dict[str, Account] = {}
    for email, name in PEOPLE.items():
        person = await find_by_email(session, email)
        if person is None:
            person = await sign_up(session, email, secrets.token_urlsafe(16), name)
            people_created += 1
        people[email] = person
    await session.commit()

    created = 0
    for demo in ORGANISATIONS:
        organisation = await get_local_organisation(session, demo.slug)
        if organisation is None:
            founder = people[demo.members[0]] if demo.members else admin
            organisation = await create_organisation(
                session,
                founder,
                {
                    "slug": demo.slug,
                    "name": demo.name,
                    "kind": demo.kind,
                    "territory": demo.territory,
                    "description": demo.description,
                    "website": demo.website,
                },
                base_url,
            )
            created += 1
        for email in demo.members[1:]:
            if await membership_of(session, people[email], organisation) is None:
                member_id, organisation_id = people[email].id, organisation.id
                assert member_id is not None and organisation_id is not None
                session.add(
                    Membership(
                        account_id=member_id,
                        organisation_id=organisation_id,
                        role=MemberRole.MEMBER,
                    )
                )
        await session.commit()
    return DemoResult(DEMO_ADMIN_EMAIL, password, created, people_created)
