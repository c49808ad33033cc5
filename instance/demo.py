"""A realistic demo data set: a tiers-lieux network, a CAE federation and a national funder.

Descriptions are in French, as a French network would write them. Loading is idempotent:
what already exists (by slug or email) is left as it is, so ``make run`` can load it at every
start. The catalogue holds commons of every kind (the software CAEs co-fund, open building
plans, a land trust, data sets...), who uses what, and improvements waiting for funding. Later
issues add pledges here.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from catalogue.commons import Commons
from catalogue.declarations import validate_declaration
from catalogue.improvements import Improvement, validate_improvement
from catalogue.operations import (
    active_declaration,
    change_status,
    create_commons,
    create_improvement,
    declare,
    get_local_commons,
    today_utc,
)
from catalogue.organisations import Organisation
from federation.declarations_feed import Counts, announce_counts
from instance.accounts import Account, create_admin, find_by_email, sign_up
from instance.memberships import (
    MemberRole,
    Membership,
    create_organisation,
    get_local_organisation,
    membership_of,
)
from instance.outgoing import queue_commons_changes

if TYPE_CHECKING:
    from federation.service import Federation

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


@dataclass(frozen=True)
class DemoCommons:
    slug: str
    name: str
    kind: str
    summary: str
    description: str
    tags: str
    licence: str
    maturity: str
    territory: str
    maintainers: tuple[str, ...]
    website: str = ""
    repository: str = ""
    languages: str = "fr"
    payment_links: str = ""  # as typed on the page: "label | address", one a line


COMMONS = [
    # Logiciels
    DemoCommons(
        "yeswiki",
        "YesWiki",
        "software",
        "Un wiki facile pour créer le site, l'annuaire et la cartographie d'un collectif.",
        "YesWiki permet à un groupe de construire ensemble son site web sans compétence "
        "technique : pages modifiables par tous, **formulaires Bazar**, annuaires, agendas et "
        "cartes.\n\nDe nombreux tiers-lieux et CAE l'utilisent comme intranet et comme vitrine.",
        "wiki, site web, coopération, cartographie",
        "AGPL-3.0-or-later",
        "stable",
        "national",
        ("association-yeswiki",),
        "https://yeswiki.net",
        "https://github.com/YesWiki/yeswiki",
        "fr, en",
        "Soutenir sur Open Collective | https://opencollective.com/yeswiki",
    ),
    DemoCommons(
        "endi",
        "enDI",
        "software",
        "Le logiciel de gestion des CAE : devis, factures, trésorerie et suivi des "
        "entrepreneurs-salariés.",
        "enDI est né dans les coopératives d'activité et d'emploi pour leur métier propre : "
        "chaque entrepreneur-salarié gère ses devis et factures, la coopérative suit la "
        "trésorerie, la paie et l'accompagnement.\n\nLes CAE du réseau cofinancent ses "
        "évolutions.",
        "gestion, facturation, cae, comptabilité",
        "GPL-3.0-or-later",
        "stable",
        "national",
        ("cooperer-pour-entreprendre", "elan-cooperatif"),
        "https://endi.coop",
    ),
    DemoCommons(
        "louty",
        "Louty",
        "software",
        "Réserver et prêter le matériel des tiers-lieux et des CAE : outils, salles, véhicules.",
        "Louty gère les prêts d'une outilthèque ou d'une matériauthèque : catalogue en ligne, "
        "réservations, cautions et rappels de retour. Plusieurs lieux peuvent partager un même "
        "catalogue.",
        "prêt, outilthèque, réservation",
        "AGPL-3.0-or-later",
        "in-development",
        "national",
        ("terre-d-entreprendre", "atelier-des-communs"),
    ),
    DemoCommons(
        "tong",
        "Tong",
        "software",
        "Suivre le temps passé et les contributions de chacun dans un projet coopératif.",
        "Tong aide les collectifs à rendre visibles les contributions bénévoles et salariées : "
        "saisie rapide, tableaux par projet et export pour les bilans aux financeurs.",
        "temps, contribution, gouvernance",
        "AGPL-3.0-or-later",
        "in-development",
        "national",
        ("elan-cooperatif",),
    ),
    DemoCommons(
        "dolibarr",
        "Dolibarr",
        "software",
        "Un ERP et CRM libre : contacts, devis, factures, stocks et adhésions.",
        "Dolibarr est un progiciel modulaire que beaucoup d'associations et de petites "
        "entreprises utilisent pour leurs adhérents, leurs factures et leurs stocks.",
        "erp, crm, facturation, adhésions",
        "GPL-3.0-or-later",
        "stable",
        "national",
        ("artisans-du-lien",),
        "https://www.dolibarr.org",
        "https://github.com/Dolibarr/dolibarr",
        "fr, en",
    ),
    DemoCommons(
        "modules-odoo-cae",
        "Modules Odoo communautaires pour CAE",
        "software",
        "Des modules Odoo pour la comptabilité analytique par entrepreneur et la paie des CAE.",
        "Ces modules ajoutent à Odoo Community ce qu'il manque aux CAE : une analytique par "
        "entrepreneur-salarié, les contributions coopératives et l'export vers la paie.",
        "odoo, erp, cae, comptabilité",
        "AGPL-3.0-or-later",
        "in-development",
        "national",
        ("elan-cooperatif",),
    ),
    DemoCommons(
        "gogocarto",
        "GoGoCarto",
        "software",
        "Créer des cartes collaboratives d'acteurs, d'initiatives et de lieux.",
        "GoGoCarto sert à fabriquer des cartographies participatives : chacun propose un point, "
        "des modérateurs valident, et la carte s'intègre dans n'importe quel site.",
        "cartographie, collaboratif, annuaire",
        "AGPL-3.0-or-later",
        "stable",
        "national",
        ("reseau-tl-aura",),
        "https://gogocarto.fr",
        "",
        "fr, en",
    ),
    DemoCommons(
        "mobilizon",
        "Mobilizon",
        "software",
        "Publier des événements et animer des groupes sans dépendre des réseaux commerciaux.",
        "Mobilizon est un logiciel fédéré d'événements et de groupes : un tiers-lieu y publie "
        "ses ateliers, et les personnes le suivent depuis Mastodon ou une autre instance.",
        "événements, agenda, fédération, activitypub",
        "AGPL-3.0-or-later",
        "stable",
        "national",
        ("reseau-tl-aura",),
        "https://joinmobilizon.org",
        "https://framagit.org/framasoft/mobilizon",
        "fr, en",
    ),
    DemoCommons(
        "paheko",
        "Paheko",
        "software",
        "Gestion d'association : membres, cotisations et comptabilité en partie double.",
        "Paheko tient la comptabilité et le fichier des membres des petites associations, avec "
        "des modules pour les caisses et les réservations.",
        "association, comptabilité, adhésions",
        "AGPL-3.0-or-later",
        "stable",
        "national",
        ("hangar-partage",),
        "https://paheko.cloud",
    ),
    DemoCommons(
        "dokos",
        "Dokos",
        "software",
        "Un ERP pensé pour les tiers-lieux : réservations d'espaces, abonnements et facturation.",
        "Dokos gère les espaces d'un tiers-lieu : postes de coworking, salles, abonnements des "
        "résidents et facturation, avec un portail pour les membres.",
        "erp, réservation, coworking, facturation",
        "GPL-3.0-or-later",
        "stable",
        "national",
        ("fabrique-du-coin",),
        "https://dokos.io",
    ),
    DemoCommons(
        "badgeuse-fablab",
        "Badgeuse libre pour fablab",
        "software",
        "Un logiciel et un lecteur de badges pour ouvrir les machines aux seuls membres formés.",
        "La badgeuse vérifie qu'un membre a suivi la formation d'une machine avant de l'allumer, "
        "et compte le temps d'utilisation pour la facturation.",
        "fablab, badge, machines",
        "MIT",
        "idea",
        "department:69",
        ("fabrique-du-coin",),
    ),
    # Connaissances
    DemoCommons(
        "guide-ouvrir-tiers-lieu",
        "Guide « Ouvrir un tiers-lieu »",
        "knowledge",
        "Les étapes, de l'idée au lieu ouvert : diagnostic, modèle économique, statuts, travaux.",
        "Écrit à plusieurs mains par les lieux du réseau, ce guide rassemble les étapes, les "
        "pièges et des modèles de documents (budget prévisionnel, convention d'occupation).",
        "guide, création, modèle économique",
        "CC-BY-SA-4.0",
        "stable",
        "national",
        ("france-tiers-lieux",),
    ),
    DemoCommons(
        "mooc-faire-tiers-lieux",
        "MOOC « Faire tiers-lieux »",
        "knowledge",
        "Six semaines de cours en ligne pour porter et animer un tiers-lieu.",
        "Vidéos, fiches et études de cas : gouvernance, animation de communauté, financement et "
        "évaluation. Les contenus sont réutilisables pour des formations en présentiel.",
        "formation, mooc, animation",
        "CC-BY-SA-4.0",
        "stable",
        "national",
        ("france-tiers-lieux",),
        "",
        "",
        "fr, en",
    ),
    DemoCommons(
        "methodes-facilitation",
        "Boîte à outils de facilitation",
        "knowledge",
        "Des méthodes d'animation pour décider ensemble : gestion par consentement, forum "
        "ouvert, world café.",
        "Chaque méthode a sa fiche : déroulé, durée, matériel, variantes et retours "
        "d'expérience des lieux qui l'ont utilisée.",
        "facilitation, gouvernance, animation",
        "CC-BY-SA-4.0",
        "stable",
        "national",
        ("reseau-tl-aura",),
    ),
    DemoCommons(
        "guide-gouvernance-partagee",
        "Guide de la gouvernance partagée en SCIC",
        "knowledge",
        "Comment répartir le pouvoir dans une SCIC de tiers-lieu : collèges, rôles et décisions.",
        "Des statuts commentés, des règlements intérieurs et des récits de lieux passés en SCIC.",
        "gouvernance, scic, statuts",
        "CC-BY-4.0",
        "in-development",
        "national",
        ("cooperer-pour-entreprendre",),
    ),
    DemoCommons(
        "parcours-formation-yeswiki",
        "Parcours de formation YesWiki",
        "knowledge",
        "Trois journées pour apprendre à construire et faire vivre un YesWiki.",
        "Supports de formation, exercices et wiki d'entraînement pour former les animateurs "
        "des lieux et des CAE.",
        "formation, wiki",
        "CC-BY-SA-4.0",
        "stable",
        "national",
        ("association-yeswiki",),
    ),
    DemoCommons(
        "guide-entrepreneur-salarie",
        "Guide de l'entrepreneur-salarié",
        "knowledge",
        "Tout ce qu'il faut savoir pour entreprendre dans une CAE : statut, contrat, sociétariat.",
        "Le guide accompagne les nouveaux entrepreneurs pendant leurs premiers mois : "
        "contrat d'appui au projet d'entreprise, passage en CDI, devenir associé.",
        "cae, entrepreneuriat, guide",
        "CC-BY-SA-4.0",
        "stable",
        "national",
        ("terre-d-entreprendre",),
    ),
    DemoCommons(
        "fiches-repair-cafe",
        "Fiches pratiques du repair café",
        "knowledge",
        "Organiser un repair café : assurance, accueil, diagnostic et suivi des réparations.",
        "",
        "réparation, réemploi, animation",
        "CC-BY-4.0",
        "stable",
        "department:69",
        ("fabrique-du-coin",),
    ),
    # Données
    DemoCommons(
        "cartographie-tiers-lieux",
        "Cartographie nationale des tiers-lieux",
        "data",
        "Le jeu de données ouvert de tous les tiers-lieux de France, mis à jour par les "
        "réseaux régionaux.",
        "Nom, adresse, activités, surfaces et contacts publics de plus de 3 500 lieux, au "
        "format CSV et GeoJSON.",
        "tiers-lieux, cartographie, open data",
        "ODbL-1.0",
        "stable",
        "national",
        ("france-tiers-lieux", "reseau-tl-aura"),
    ),
    DemoCommons(
        "observatoire-tiers-lieux",
        "Données de l'observatoire des tiers-lieux",
        "data",
        "Les réponses anonymisées au recensement annuel des tiers-lieux.",
        "Emplois, modèles économiques, publics et activités : les données brutes derrière le "
        "rapport annuel, pour que chercheurs et réseaux puissent les réutiliser.",
        "observatoire, statistiques, open data",
        "etalab-2.0",
        "stable",
        "national",
        ("france-tiers-lieux",),
    ),
    DemoCommons(
        "annuaire-cae",
        "Annuaire ouvert des CAE",
        "data",
        "Toutes les coopératives d'activité et d'emploi, leurs métiers et leurs territoires.",
        "",
        "cae, annuaire, open data",
        "ODbL-1.0",
        "in-development",
        "national",
        ("cooperer-pour-entreprendre",),
    ),
    DemoCommons(
        "referentiel-materiaux-reemploi",
        "Référentiel des matériaux de réemploi",
        "data",
        "Les matériaux du bâtiment qu'on peut réemployer, avec leurs caractéristiques techniques.",
        "Fiches par matériau (tuiles, bois de charpente, menuiseries) : état requis, "
        "contrôles, assurances et retours de chantiers.",
        "réemploi, bâtiment, matériaux",
        "CC-BY-SA-4.0",
        "in-development",
        "department:44",
        ("hangar-partage", "artisans-du-lien"),
    ),
    DemoCommons(
        "inventaire-outiltheques",
        "Inventaire des outilthèques",
        "data",
        "Qui prête quels outils, où, et à quelles conditions.",
        "",
        "outilthèque, prêt, open data",
        "ODbL-1.0",
        "idea",
        "region:84",
        ("reseau-tl-aura",),
    ),
    DemoCommons(
        "indicateurs-impact-social",
        "Indicateurs d'impact social des tiers-lieux",
        "data",
        "Un jeu d'indicateurs communs pour mesurer ce qu'un lieu apporte à son territoire.",
        "Définitions, méthodes de collecte et valeurs de référence, discutés avec les "
        "financeurs publics.",
        "évaluation, impact, indicateurs",
        "CC-BY-4.0",
        "in-development",
        "region:84",
        ("region-aura", "reseau-tl-aura"),
    ),
    # Matériel libre et plans de construction
    DemoCommons(
        "serre-bioclimatique",
        "Serre bioclimatique en bois",
        "hardware",
        "Les plans d'une serre de 30 m² qui stocke la chaleur du jour pour les nuits d'hiver.",
        "Ossature bois, mur de stockage en terre crue et ventilation naturelle : plans cotés, "
        "liste de matériaux et notice de montage pour un chantier participatif.",
        "serre, bioclimatique, bois, autoconstruction",
        "CERN-OHL-S-2.0",
        "stable",
        "department:07",
        ("moulin-des-possibles",),
    ),
    DemoCommons(
        "four-a-pain-mobile",
        "Four à pain mobile",
        "hardware",
        "Un four à bois sur remorque pour cuire le pain dans les fêtes de village.",
        "Plans de la remorque, de la voûte en briques réfractaires et du foyer, avec les "
        "règles de sécurité pour cuire en public.",
        "four, pain, remorque",
        "CERN-OHL-S-2.0",
        "stable",
        "department:23",
        ("grange-numerique",),
    ),
    DemoCommons(
        "toilettes-seches",
        "Toilettes sèches publiques",
        "hardware",
        "Des toilettes sèches accessibles aux fauteuils roulants, pour les lieux et les "
        "événements.",
        "Cabine en bois démontable, séparation des urines, bac à compost : plans et guide "
        "d'entretien.",
        "toilettes sèches, compost, accessibilité",
        "CC-BY-SA-4.0",
        "stable",
        "national",
        ("moulin-des-possibles",),
    ),
    DemoCommons(
        "wikihouse",
        "WikiHouse",
        "hardware",
        "Des maisons en panneaux de bois découpés à la fraiseuse numérique et montés sans "
        "outillage lourd.",
        "WikiHouse publie les fichiers de découpe et les règles de conception d'un système "
        "constructif ouvert ; des fablabs l'adaptent aux normes françaises.",
        "construction, bois, fraiseuse numérique",
        "MPL-2.0",
        "in-development",
        "national",
        ("fabrique-du-coin",),
        "https://www.wikihouse.cc",
        "",
        "en, fr",
    ),
    DemoCommons(
        "presse-briques-terre",
        "Presse à briques de terre compressée",
        "hardware",
        "Une presse hydraulique pour fabriquer des briques de terre crue sur le chantier.",
        "Adaptée des machines d'Open Source Ecology : plans, liste de pièces et réglages pour "
        "les terres locales.",
        "terre crue, construction, open source ecology",
        "CC-BY-SA-4.0",
        "in-development",
        "department:07",
        ("moulin-des-possibles", "artisans-du-lien"),
    ),
    DemoCommons(
        "tracteur-libre",
        "Petit tracteur libre",
        "hardware",
        "Un tracteur modulaire, réparable avec des pièces standard.",
        "Inspiré du LifeTrac d'Open Source Ecology, adapté au maraîchage sur petites surfaces.",
        "agriculture, machine, réparabilité",
        "CC-BY-SA-4.0",
        "idea",
        "department:23",
        ("grange-numerique",),
    ),
    DemoCommons(
        "mobilier-coworking",
        "Mobilier de coworking en contreplaqué",
        "hardware",
        "Bureaux, étagères et cabines téléphoniques à découper dans des panneaux de contreplaqué.",
        "",
        "mobilier, fraiseuse numérique, coworking",
        "CERN-OHL-W-2.0",
        "stable",
        "department:35",
        ("atelier-des-communs",),
    ),
    DemoCommons(
        "velo-cargo",
        "Vélo-cargo à assembler",
        "hardware",
        "Un vélo-cargo solide, soudé en atelier partagé, pour les livraisons de proximité.",
        "Gabarits de soudure, nomenclature et guide pour animer un atelier d'assemblage.",
        "vélo, mobilité, soudure",
        "CERN-OHL-S-2.0",
        "in-development",
        "department:44",
        ("hangar-partage",),
    ),
    # Infrastructures partagées
    DemoCommons(
        "fonciere-tiers-lieux",
        "Foncière solidaire des tiers-lieux",
        "infrastructure",
        "Une foncière qui achète les murs des tiers-lieux pour les sortir de la spéculation.",
        "Les citoyens et les lieux deviennent actionnaires ; la foncière achète les bâtiments "
        "et les loue aux collectifs qui les font vivre, à un loyer stable.",
        "foncier, immobilier, épargne solidaire",
        "",
        "in-development",
        "national",
        ("france-tiers-lieux", "reseau-tl-aura"),
    ),
    DemoCommons(
        "materiautheque-hangar",
        "Matériauthèque du Hangar",
        "infrastructure",
        "1 200 m² de matériaux de réemploi récupérés sur les chantiers nantais.",
        "",
        "réemploi, matériaux, bâtiment",
        "",
        "stable",
        "department:44",
        ("hangar-partage",),
    ),
    DemoCommons(
        "cuisine-partagee-grange",
        "Cuisine partagée de la Grange",
        "infrastructure",
        "Une cuisine professionnelle louée à l'heure aux producteurs et traiteurs du territoire.",
        "",
        "cuisine, alimentation, location",
        "",
        "stable",
        "department:23",
        ("grange-numerique",),
    ),
    DemoCommons(
        "outiltheque-mutualisee",
        "Outilthèque mutualisée de Rennes",
        "infrastructure",
        "Un stock d'outils de chantier partagé par trois lieux et leurs entrepreneurs.",
        "",
        "outilthèque, prêt, chantier",
        "",
        "stable",
        "department:35",
        ("atelier-des-communs", "terre-d-entreprendre"),
    ),
    DemoCommons(
        "flotte-velos-cargos",
        "Flotte de vélos-cargos mutualisée",
        "infrastructure",
        "Douze vélos-cargos partagés entre artisans et lieux lyonnais.",
        "",
        "vélo, mobilité, mutualisation",
        "",
        "idea",
        "department:69",
        ("fabrique-du-coin",),
    ),
    # Services
    DemoCommons(
        "comptabilite-partagee",
        "Comptabilité partagée des CAE",
        "service",
        "Un pôle comptable commun à plusieurs CAE, avec des outils et des plans de comptes "
        "partagés.",
        "Les CAE du réseau mettent en commun leurs comptables et leurs procédures : clôtures, "
        "révision et formation des nouveaux arrivants.",
        "comptabilité, cae, mutualisation",
        "",
        "stable",
        "national",
        ("cooperer-pour-entreprendre",),
    ),
    DemoCommons(
        "hebergement-mutualise",
        "Hébergement mutualisé des outils libres",
        "service",
        "Des serveurs partagés qui hébergent le YesWiki, le Nextcloud et la visio des lieux.",
        "Un collectif d'hébergeurs éthiques sert les lieux du réseau : sauvegardes, mises à "
        "jour et assistance, pour une cotisation mensuelle.",
        "hébergement, chatons, logiciels libres",
        "",
        "stable",
        "region:84",
        ("reseau-tl-aura",),
    ),
    DemoCommons(
        "peertube-tiers-lieux",
        "Instance PeerTube des tiers-lieux",
        "service",
        "La plateforme vidéo libre du réseau : captations, tutoriels et webinaires.",
        "",
        "vidéo, peertube, fédération",
        "",
        "stable",
        "national",
        ("france-tiers-lieux",),
    ),
    DemoCommons(
        "agenda-mobilizon",
        "Agenda Mobilizon des tiers-lieux d'Auvergne-Rhône-Alpes",
        "service",
        "Tous les événements des lieux de la région, sur une instance Mobilizon commune.",
        "",
        "événements, agenda, mobilizon",
        "",
        "in-development",
        "region:84",
        ("reseau-tl-aura",),
    ),
    DemoCommons(
        "assistance-yeswiki",
        "Assistance YesWiki mutualisée",
        "service",
        "Une permanence d'entraide pour les administrateurs de YesWiki des lieux et des CAE.",
        "",
        "wiki, assistance, entraide",
        "",
        "stable",
        "national",
        ("association-yeswiki",),
    ),
    DemoCommons(
        "juriste-partage",
        "Juriste partagée",
        "service",
        "Une juriste salariée à temps partagé entre cinq tiers-lieux bretons.",
        "",
        "juridique, mutualisation, emploi partagé",
        "",
        "in-development",
        "region:53",
        ("atelier-des-communs",),
    ),
    # Autres
    DemoCommons(
        "charte-communs-tiers-lieux",
        "Charte des communs des tiers-lieux",
        "other",
        "Les engagements que prennent les lieux qui partagent leurs ressources.",
        "Ouvrir ce qu'on produit, citer ce qu'on réutilise, contribuer en retour : la charte "
        "tient sur une page et se signe en assemblée.",
        "charte, communs, engagement",
        "CC-BY-SA-4.0",
        "stable",
        "national",
        ("france-tiers-lieux",),
    ),
    DemoCommons(
        "fonds-communs-cae",
        "Caisse commune des CAE",
        "other",
        "Une caisse où chaque CAE verse un peu de son chiffre d'affaires pour financer les "
        "outils partagés.",
        "",
        "financement, mutualisation, cae",
        "",
        "idea",
        "national",
        ("cooperer-pour-entreprendre",),
    ),
    DemoCommons(
        "reseau-concierges",
        "Réseau d'entraide des concierges de tiers-lieux",
        "other",
        "Celles et ceux qui accueillent dans les lieux se forment et se remplacent entre eux.",
        "",
        "accueil, entraide, métier",
        "",
        "in-development",
        "region:84",
        ("reseau-tl-aura",),
    ),
]


@dataclass(frozen=True)
class DemoDeclaration:
    organisation: str
    commons: str
    kind: str = "uses"
    since: str = ""
    satisfaction: str = ""
    comment: str = ""


DECLARATIONS = [
    DemoDeclaration(
        "fabrique-du-coin",
        "yeswiki",
        "uses",
        "2019-03-01",
        "5",
        "Notre site et l'annuaire des résidents tournent dessus.",
    ),
    DemoDeclaration(
        "atelier-des-communs",
        "yeswiki",
        "uses",
        "2020-09-15",
        "4",
        "Intranet de la CAE et du lieu.",
    ),
    DemoDeclaration("terre-d-entreprendre", "yeswiki", "uses", "2020-09-15", "4"),
    DemoDeclaration(
        "elan-cooperatif",
        "yeswiki",
        "uses",
        "2021-01-10",
        "4",
        "Très pratique pour l'accueil des nouveaux entrepreneurs.",
    ),
    DemoDeclaration(
        "grange-numerique",
        "yeswiki",
        "uses",
        "2022-04-01",
        "5",
        "Nous l'utilisons en médiation numérique avec les habitants.",
    ),
    DemoDeclaration("reseau-tl-aura", "yeswiki", "uses", "2018-06-01", "5"),
    DemoDeclaration(
        "hangar-partage",
        "yeswiki",
        "interested",
        comment="Nous voulons remplacer notre site statique.",
    ),
    DemoDeclaration(
        "elan-cooperatif",
        "endi",
        "uses",
        "2017-01-01",
        "4",
        "Toute la facturation de la coopérative.",
    ),
    DemoDeclaration(
        "terre-d-entreprendre",
        "endi",
        "uses",
        "2019-01-01",
        "3",
        "Indispensable, mais les exports comptables demandent encore des retouches.",
    ),
    DemoDeclaration("artisans-du-lien", "endi", "uses", "2021-07-01", "4"),
    DemoDeclaration("cooperer-pour-entreprendre", "endi", "uses", "2016-01-01", "4"),
    DemoDeclaration(
        "atelier-des-communs",
        "louty",
        "uses",
        "2025-02-01",
        "4",
        "Notre outilthèque y est passée cet hiver.",
    ),
    DemoDeclaration(
        "hangar-partage",
        "louty",
        "interested",
        comment="Pour la matériauthèque, si les cautions sont gérées.",
    ),
    DemoDeclaration("fabrique-du-coin", "louty", "interested"),
    DemoDeclaration("elan-cooperatif", "tong", "uses", "2024-10-01", "3"),
    DemoDeclaration(
        "terre-d-entreprendre",
        "tong",
        "interested",
        comment="Pour valoriser le bénévolat dans nos bilans.",
    ),
    DemoDeclaration(
        "artisans-du-lien",
        "dolibarr",
        "uses",
        "2018-03-01",
        "4",
        "Nos devis de chantier et les stocks.",
    ),
    DemoDeclaration("hangar-partage", "dolibarr", "uses", "2020-05-01", "3"),
    DemoDeclaration(
        "elan-cooperatif",
        "modules-odoo-cae",
        "interested",
        comment="Pour sortir des tableurs de paie.",
    ),
    DemoDeclaration(
        "reseau-tl-aura", "gogocarto", "uses", "2021-03-01", "5", "La carte régionale des lieux."
    ),
    DemoDeclaration("france-tiers-lieux", "gogocarto", "uses", "2022-01-01", "4"),
    DemoDeclaration("grange-numerique", "gogocarto", "interested"),
    DemoDeclaration(
        "fabrique-du-coin",
        "mobilizon",
        "uses",
        "2023-05-01",
        "4",
        "Le repair café du samedi y est publié chaque semaine.",
    ),
    DemoDeclaration("moulin-des-possibles", "mobilizon", "uses", "2024-01-01", "4"),
    DemoDeclaration(
        "grange-numerique",
        "paheko",
        "uses",
        "2021-01-01",
        "5",
        "Comptabilité simple et adhésions en ligne.",
    ),
    DemoDeclaration("hangar-partage", "paheko", "uses", "2022-01-01", "4"),
    DemoDeclaration(
        "fabrique-du-coin",
        "dokos",
        "uses",
        "2022-09-01",
        "4",
        "Réservations des salles et abonnements des résidents.",
    ),
    DemoDeclaration("atelier-des-communs", "dokos", "interested"),
    DemoDeclaration(
        "moulin-des-possibles",
        "guide-ouvrir-tiers-lieu",
        "uses",
        "2020-02-01",
        "5",
        "Il nous a évité bien des erreurs sur la convention d'occupation.",
    ),
    DemoDeclaration("grange-numerique", "guide-ouvrir-tiers-lieu", "uses", "2021-06-01", "4"),
    DemoDeclaration("grange-numerique", "mooc-faire-tiers-lieux", "uses", "2022-03-01", "4"),
    DemoDeclaration(
        "hangar-partage",
        "methodes-facilitation",
        "uses",
        "2023-01-01",
        "5",
        "La gestion par consentement a transformé nos réunions.",
    ),
    DemoDeclaration("atelier-des-communs", "methodes-facilitation", "uses", "2022-06-01", "4"),
    DemoDeclaration(
        "moulin-des-possibles",
        "guide-gouvernance-partagee",
        "interested",
        comment="Nous passons en SCIC l'an prochain.",
    ),
    DemoDeclaration(
        "terre-d-entreprendre", "guide-entrepreneur-salarie", "uses", "2019-09-01", "5"
    ),
    DemoDeclaration("elan-cooperatif", "guide-entrepreneur-salarie", "uses", "2020-01-01", "4"),
    DemoDeclaration("grange-numerique", "fiches-repair-cafe", "uses", "2023-09-01", "4"),
    DemoDeclaration(
        "region-aura",
        "cartographie-tiers-lieux",
        "uses",
        "2021-01-01",
        "4",
        "Pour instruire les appels à projets.",
    ),
    DemoDeclaration("reseau-tl-aura", "observatoire-tiers-lieux", "uses", "2022-01-01", "4"),
    DemoDeclaration(
        "region-aura",
        "indicateurs-impact-social",
        "interested",
        comment="Nous aimerions les reprendre dans nos conventions.",
    ),
    DemoDeclaration(
        "artisans-du-lien",
        "referentiel-materiaux-reemploi",
        "uses",
        "2024-03-01",
        "3",
        "Utile, encore incomplet pour les menuiseries.",
    ),
    DemoDeclaration(
        "moulin-des-possibles",
        "serre-bioclimatique",
        "uses",
        "2021-04-01",
        "5",
        "Construite en trois chantiers participatifs, 12 °C de plus en janvier.",
    ),
    DemoDeclaration("grange-numerique", "serre-bioclimatique", "interested"),
    DemoDeclaration(
        "grange-numerique",
        "four-a-pain-mobile",
        "uses",
        "2022-07-01",
        "5",
        "Il fait le tour des fêtes de village tout l'été.",
    ),
    DemoDeclaration("hangar-partage", "toilettes-seches", "uses", "2023-06-01", "4"),
    DemoDeclaration("moulin-des-possibles", "toilettes-seches", "uses", "2020-06-01", "5"),
    DemoDeclaration(
        "fabrique-du-coin", "wikihouse", "interested", comment="Pour notre futur atelier bois."
    ),
    DemoDeclaration("artisans-du-lien", "presse-briques-terre", "interested"),
    DemoDeclaration("atelier-des-communs", "mobilier-coworking", "uses", "2021-11-01", "4"),
    DemoDeclaration("fabrique-du-coin", "mobilier-coworking", "uses", "2022-02-01", "4"),
    DemoDeclaration("artisans-du-lien", "materiautheque-hangar", "uses", "2023-04-01", "4"),
    DemoDeclaration("elan-cooperatif", "comptabilite-partagee", "uses", "2020-01-01", "4"),
    DemoDeclaration("terre-d-entreprendre", "comptabilite-partagee", "uses", "2021-01-01", "4"),
    DemoDeclaration(
        "fabrique-du-coin",
        "hebergement-mutualise",
        "uses",
        "2021-09-01",
        "5",
        "Plus de soucis de sauvegardes.",
    ),
    DemoDeclaration("moulin-des-possibles", "hebergement-mutualise", "uses", "2022-09-01", "4"),
    DemoDeclaration("grange-numerique", "peertube-tiers-lieux", "uses", "2023-02-01", "4"),
    DemoDeclaration("elan-cooperatif", "assistance-yeswiki", "uses", "2022-05-01", "5"),
    DemoDeclaration("hangar-partage", "charte-communs-tiers-lieux", "uses", "2024-05-01", "5"),
    DemoDeclaration(
        "artisans-du-lien",
        "fonds-communs-cae",
        "interested",
        comment="Prêts à y verser 0,5 % de notre chiffre d'affaires.",
    ),
    DemoDeclaration(
        "moulin-des-possibles",
        "fonciere-tiers-lieux",
        "interested",
        comment="Notre bail se termine en 2028.",
    ),
]


@dataclass(frozen=True)
class DemoImprovement:
    commons: str
    title: str
    description: str
    budget: str
    milestones: str
    provider: str | None
    deadline: str
    status: str = "open"
    payment_links: str = ""


IMPROVEMENTS = [
    DemoImprovement(
        "yeswiki",
        "Export PDF des fiches Bazar",
        "Exporter une fiche ou une liste de fiches en PDF mis en page, pour les dossiers de "
        "subvention et les affichages.",
        "6000",
        "Maquette et choix de la bibliothèque: 1000\nExport d'une fiche: 2500\n"
        "Export de listes et documentation: 2500",
        "association-yeswiki",
        "2027-06-30",
        payment_links="Payer l'association YesWiki | https://opencollective.com/yeswiki",
    ),
    DemoImprovement(
        "yeswiki",
        "Accessibilité RGAA du thème par défaut",
        "Mettre le thème par défaut au niveau AA du RGAA : contrastes, navigation au clavier, "
        "libellés des formulaires.",
        "12000",
        "Audit: 3000\nCorrections du thème: 7000\nContre-audit: 2000",
        "association-yeswiki",
        "2027-09-30",
    ),
    DemoImprovement(
        "yeswiki",
        "Traduction en occitan et en breton",
        "",
        "2500",
        "",
        "association-yeswiki",
        "2027-12-31",
        "draft",
    ),
    DemoImprovement(
        "endi",
        "Export FEC conforme pour toutes les CAE",
        "Produire un fichier des écritures comptables conforme sans retouche manuelle.",
        "18000",
        "Spécifications avec trois CAE: 3000\nDéveloppement: 12000\nRecette: 3000",
        "elan-cooperatif",
        "2027-03-31",
    ),
    DemoImprovement(
        "endi",
        "Signature électronique des devis",
        "Faire signer les devis en ligne par les clients, avec horodatage.",
        "9500",
        "",
        "elan-cooperatif",
        "2026-12-31",
        "funded",
    ),
    DemoImprovement(
        "louty",
        "Gestion des cautions et des retards",
        "Enregistrer les cautions, relancer automatiquement les retardataires et bloquer les "
        "nouveaux prêts.",
        "7000",
        "Cautions: 3000\nRelances et blocages: 4000",
        "terre-d-entreprendre",
        "2027-05-31",
    ),
    DemoImprovement(
        "louty",
        "Catalogue partagé entre plusieurs lieux",
        "",
        "15000",
        "",
        "terre-d-entreprendre",
        "2027-10-31",
        "draft",
    ),
    DemoImprovement(
        "tong",
        "Export des contributions bénévoles pour les bilans",
        "Un export au format attendu par les financeurs publics pour valoriser le bénévolat.",
        "4500",
        "",
        "elan-cooperatif",
        "2027-04-30",
    ),
    DemoImprovement(
        "gogocarto",
        "Import automatique depuis la cartographie nationale",
        "Synchroniser chaque nuit la carte régionale avec le jeu de données national.",
        "5500",
        "Connecteur: 4000\nDocumentation: 1500",
        "reseau-tl-aura",
        "2027-02-28",
    ),
    DemoImprovement(
        "mobilizon",
        "Billetterie à prix libre",
        "Permettre une participation libre et consciente à l'inscription à un événement.",
        "8000",
        "",
        "reseau-tl-aura",
        "2027-06-30",
    ),
    DemoImprovement(
        "cartographie-tiers-lieux",
        "Mise à jour 2027 par les réseaux régionaux",
        "Vérifier et compléter les fiches de chaque région, puis publier la nouvelle version.",
        "24000",
        "Outil de vérification: 6000\nCampagne de mise à jour: 15000\nPublication: 3000",
        "france-tiers-lieux",
        "2027-06-30",
    ),
    DemoImprovement(
        "serre-bioclimatique",
        "Notice de montage illustrée",
        "Une notice pas à pas avec des dessins, pour les chantiers participatifs.",
        "3000",
        "Dessins: 2000\nMise en page: 1000",
        "moulin-des-possibles",
        "2026-09-30",
        "delivered",
    ),
    DemoImprovement(
        "four-a-pain-mobile",
        "Homologation de la remorque",
        "Faire réceptionner la remorque par la DREAL pour circuler sur route.",
        "4200",
        "",
        "grange-numerique",
        "2027-03-31",
    ),
    DemoImprovement(
        "wikihouse",
        "Adapter les règles de conception aux normes françaises",
        "Calculs de structure et essais pour un avis technique.",
        "35000",
        "Calculs de structure: 15000\nEssais en laboratoire: 20000",
        "fabrique-du-coin",
        "2027-12-31",
    ),
    DemoImprovement(
        "fonciere-tiers-lieux",
        "Étude juridique et financière de la foncière",
        "Choisir la forme juridique, le modèle de loyers et préparer l'agrément ESUS.",
        "20000",
        "Étude juridique: 8000\nModèle financier: 8000\nDossier d'agrément: 4000",
        "france-tiers-lieux",
        "2027-06-30",
        "funded",
    ),
    DemoImprovement(
        "methodes-facilitation",
        "Vidéos de démonstration des méthodes",
        "Filmer chaque méthode en situation réelle dans un lieu du réseau.",
        "6500",
        "",
        "reseau-tl-aura",
        "2027-05-31",
    ),
]

# The path from a new (draft) improvement to each status the demo shows.
STATUS_PATHS: dict[str, tuple[str, ...]] = {
    "draft": (),
    "open": ("open",),
    "funded": ("open", "funded"),
    "in-progress": ("open", "funded", "in-progress"),
    "delivered": ("open", "funded", "in-progress", "delivered"),
}


@dataclass
class DemoResult:
    admin_email: str
    admin_password: str
    organisations_created: int
    people_created: int
    commons_created: int = 0
    declarations_created: int = 0
    improvements_created: int = 0


async def load_demo(
    session: AsyncSession,
    base_url: str,
    admin_password: str | None = None,
    *,
    currency: str = "EUR",
    federation: Federation | None = None,
) -> DemoResult:
    """Load the demo set; the admin's password is reset and returned so it can be printed.

    With ``federation``, the commons are announced as the pages would (see
    ``load_catalogue``)."""
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
    catalogue = await load_catalogue(session, base_url, admin, currency, federation=federation)
    return DemoResult(
        DEMO_ADMIN_EMAIL,
        password,
        created,
        people_created,
        catalogue.commons,
        catalogue.declarations,
        catalogue.improvements,
    )


@dataclass
class CatalogueCounts:
    commons: int = 0
    declarations: int = 0
    improvements: int = 0


async def load_catalogue(
    session: AsyncSession,
    base_url: str,
    admin: Account,
    currency: str = "EUR",
    *,
    federation: Federation | None = None,
) -> CatalogueCounts:
    """The demo commons, declarations and improvements that are not there yet.

    Existing commons (by slug), active declarations and improvements (by title) are kept as
    they are, even if someone edited them: the demo never overwrites a person's work.

    The commons and declarations are written in one transaction with, given ``federation``,
    what the pages would queue: a ``Create`` of each new commons (with its figures) from the
    instance actor, and an ``Update`` of an existing one whose figures the new declarations
    moved. Improvements opened here are announced when the instance starts
    (``instance.outgoing.announce_unsent_improvements``).
    """
    organisations: dict[str, Organisation] = {}
    for demo in ORGANISATIONS:
        organisation = await get_local_organisation(session, demo.slug)
        assert organisation is not None
        organisations[demo.slug] = organisation
    counts = CatalogueCounts()
    commons: dict[str, Commons] = {}
    created: list[Commons] = []
    for demo_commons in COMMONS:
        found = await get_local_commons(session, demo_commons.slug)
        if found is None:
            found = await _create_commons(session, demo_commons, organisations, base_url, admin)
            created.append(found)
            counts.commons += 1
        commons[demo_commons.slug] = found
    new_ids = {c.id for c in created}
    figures_before: dict[str, Counts] = {}  # existing commons given a declaration now
    for declaration in DECLARATIONS:
        organisation = organisations[declaration.organisation]
        target = commons[declaration.commons]
        if await active_declaration(session, organisation, target, declaration.kind) is None:
            if target.id not in new_ids:
                figures_before.setdefault(declaration.commons, Counts.of(target))
            cleaned = validate_declaration(
                declaration.kind,
                declaration.since,
                declaration.comment,
                declaration.satisfaction,
                today=today_utc(),
            )
            await declare(
                session,
                organisation,
                target,
                cleaned,
                base_url=base_url,
                creator_id=admin.id,
                commit=False,
            )
            counts.declarations += 1
    if federation is not None:
        for new in created:
            await session.refresh(new)  # its figures were written by an UPDATE statement
        await queue_commons_changes(session, federation, created)
        for slug, before in figures_before.items():
            await announce_counts(session, federation, commons[slug], before)
    await session.commit()
    for improvement in IMPROVEMENTS:
        if await _add_improvement(
            session, improvement, commons, organisations, base_url, admin, currency
        ):
            counts.improvements += 1
    return counts


async def _create_commons(
    session: AsyncSession,
    demo: DemoCommons,
    organisations: dict[str, Organisation],
    base_url: str,
    admin: Account,
) -> Commons:
    data = {
        "slug": demo.slug,
        "name": demo.name,
        "kind": demo.kind,
        "summary": demo.summary,
        "description": demo.description,
        "tags": demo.tags,
        "licence": demo.licence,
        "website": demo.website,
        "repository": demo.repository,
        "maturity": demo.maturity,
        "languages": demo.languages,
        "territory": demo.territory,
        "payment_links": demo.payment_links,
    }
    maintainer_ids = [organisations[slug].id for slug in demo.maintainers]
    return await create_commons(
        session,
        data,
        base_url=base_url,
        creator_id=admin.id,
        maintainer_ids=[i for i in maintainer_ids if i is not None],
        commit=False,  # committed with its declarations and its announcement
    )


async def _add_improvement(
    session: AsyncSession,
    demo: DemoImprovement,
    commons: dict[str, Commons],
    organisations: dict[str, Organisation],
    base_url: str,
    admin: Account,
    currency: str,
) -> bool:
    """Create the improvement unless its commons already has one of that title."""
    target = commons[demo.commons]
    existing = await session.exec(
        select(Improvement.id).where(
            Improvement.commons_id == target.id, Improvement.title == demo.title
        )
    )
    if existing.first() is not None:
        return False
    cleaned = validate_improvement(
        {
            "title": demo.title,
            "description": demo.description,
            "budget": demo.budget,
            "milestones": demo.milestones,
            "deadline": demo.deadline,
            "payment_links": demo.payment_links,
        }
    )
    provider = organisations[demo.provider] if demo.provider else None
    improvement = await create_improvement(
        session,
        target,
        cleaned,
        base_url=base_url,
        currency=currency,
        provider_id=provider.id if provider else None,
        creator_id=admin.id,
    )
    for status in STATUS_PATHS[demo.status]:
        await change_status(session, improvement, status)
    return True
