"""A realistic demo data set: a tiers-lieux network, a CAE federation and a national funder.

Descriptions are in French, as a French network would write them. Loading is idempotent:
what already exists (by slug or email) is left as it is, so ``make run`` can load it at every
start. Later issues add commons, improvements and pledges here.
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
        "L'association nationale des tiers-lieux. Cet automne, elle double chaque euro qu'un "
        "lieu donne à un commun, jusqu'à 500 € par lieu.",
        "https://francetierslieux.fr",
        ("sophie@terreau.example",),
    ),
    DemoOrganisation(
        "region-aura",
        "Région Auvergne-Rhône-Alpes",
        "public-body",
        "region:84",
        "La Région finance directement certaines briques et ajoute un euro sur les communs "
        "logiciels.",
    ),
    DemoOrganisation(
        "reseau-tl-aura",
        "Réseau des tiers-lieux d'Auvergne-Rhône-Alpes",
        "network",
        "region:84",
        "Le réseau régional des tiers-lieux : formations, outils partagés et entraide.",
        members=("amina@terreau.example",),
    ),
    DemoOrganisation(
        "fabrique-du-coin",
        "La Fabrique du Coin",
        "tiers-lieu",
        "department:69",
        "Fablab et coworking dans une ancienne imprimerie lyonnaise : 40 résidents, "
        "un atelier bois et un repair café tous les samedis.",
        members=("amina@terreau.example", "louis@terreau.example"),
    ),
    DemoOrganisation(
        "hangar-partage",
        "Le Hangar Partagé",
        "tiers-lieu",
        "department:44",
        "Un ancien hangar à bateaux nantais devenu ateliers, cantine et matériauthèque.",
    ),
    DemoOrganisation(
        "grange-numerique",
        "La Grange Numérique",
        "tiers-lieu",
        "department:23",
        "Un tiers-lieu rural en Creuse : médiation numérique, coworking et cuisine partagée.",
    ),
    DemoOrganisation(
        "moulin-des-possibles",
        "Le Moulin des Possibles",
        "tiers-lieu",
        "department:07",
        "Un ancien moulinage ardéchois rénové avec des plans de construction libres.",
    ),
    DemoOrganisation(
        "atelier-des-communs",
        "L'Atelier des Communs",
        "tiers-lieu",
        "department:35",
        "Un tiers-lieu rennais porté par une CAE : coworking, atelier d'impression et outilthèque.",
        members=("claire@terreau.example",),
    ),
    DemoOrganisation(
        "cooperer-pour-entreprendre",
        "Coopérer pour Entreprendre",
        "network",
        "national",
        "Un réseau national de coopératives d'activité et d'emploi. Ses membres cofinancent "
        "les logiciels qu'ils partagent, comme YesWiki.",
        "https://www.cooperer.coop",
        ("claire@terreau.example", "thomas@terreau.example"),
    ),
    DemoOrganisation(
        "elan-cooperatif",
        "Élan Coopératif",
        "cae",
        "department:33",
        "Une CAE bordelaise de 120 entrepreneurs-salariés, du développement web à la menuiserie.",
        members=("thomas@terreau.example",),
    ),
    DemoOrganisation(
        "terre-d-entreprendre",
        "Terre d'Entreprendre",
        "cae",
        "department:35",
        "Une CAE bretonne qui anime L'Atelier des Communs.",
        members=("claire@terreau.example",),
    ),
    DemoOrganisation(
        "artisans-du-lien",
        "Artisans du Lien",
        "cae",
        "department:13",
        "Une CAE marseillaise pour les métiers de l'artisanat et du bâtiment.",
    ),
    DemoOrganisation(
        "association-yeswiki",
        "Association YesWiki",
        "association",
        "national",
        "L'association qui fait vivre YesWiki, le wiki qu'utilisent de nombreux tiers-lieux et "
        "CAE.",
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
