"""Word lists and templates of the built-in review dataset (pure data).

Part of :mod:`overfit_lab.data.builtin`, which re-exports every name here; the sentences built
from them are in :mod:`overfit_lab.data._builtin_grammar`.
"""

from __future__ import annotations

__all__ = ["FEMALE_NAMES", "MALE_NAMES", "NAMES", "PRONOUNS", "DOMAINS", "WHEN", "POSITIVE_STRONG",
           "POSITIVE_MILD", "NEGATIVE_STRONG", "NEGATIVE_MILD", "NEUTRAL_ADJ", "NEGATABLE",
           "MILD_INTENSIFIERS", "STRONG_INTENSIFIERS", "NEGATIONS", "COMPARATIVE", "FIND_NOTHING",
           "VERDICTS", "POLAR_WEIGHTS", "NEUTRAL_WEIGHTS", "TAIL_PROBS"]

FEMALE_NAMES = (
    "Maria", "Emma", "Olivia", "Sofia", "Hannah", "Grace", "Chloe", "Priya", "Aisha", "Mei",
    "Laura", "Julia", "Nina", "Rachel", "Fatima", "Elena", "Claire", "Anna", "Zoe", "Lucy",
)
MALE_NAMES = (
    "James", "David", "Omar", "Lucas", "Daniel", "Ethan", "Rahul", "Kenji", "Carlos", "Noah",
    "Peter", "Samuel", "Tom", "Ahmed", "Marco", "Adam", "Ben", "Leo", "Victor", "Hugo",
)
NAMES = {"female": FEMALE_NAMES, "male": MALE_NAMES}
PRONOUNS = {
    "female": {"subj": "she", "obj": "her", "poss": "her", "poss_abs": "hers"},
    "male": {"subj": "he", "obj": "him", "poss": "his", "poss_abs": "his"},
}

# domain -> openings, items, aspects (that fit every item), neutral filler sentences
DOMAINS: dict[str, dict[str, tuple[str, ...]]] = {
    "restaurant": {
        "openings": ("{name} ate at {item} {when}.", "{name} tried {item} {when}.",
                     "{name} took a friend to {item} {when}."),
        "items": ("the new ramen place", "a small bistro", "the taco truck",
                  "an Italian restaurant", "the corner cafe", "a sushi bar", "the hotel buffet",
                  "a family diner", "the steakhouse downtown", "a vegan kitchen"),
        "aspects": ("food", "service", "dessert", "coffee", "atmosphere", "soup", "wine list",
                    "bread", "waiter", "menu", "main course", "music", "seating", "bill"),
        "fillers": ("{Subj} went with {poss} sister.", "{Subj} paid with a gift card.",
                    "It was {poss} second visit this year.", "{Subj} had booked a table.",
                    "{Subj} was there for about two hours.",
                    "A colleague of {poss_abs} came along."),
    },
    "film": {
        "openings": ("{name} watched {item} {when}.", "{name} went to see {item} {when}.",
                     "{name} streamed {item} {when}."),
        "items": ("the new thriller", "a documentary about whales", "the sequel",
                  "an animated film", "a romantic comedy", "the space opera", "a horror movie",
                  "the period drama", "an indie western", "the superhero film"),
        "aspects": ("plot", "acting", "soundtrack", "ending", "dialogue", "pacing",
                    "camera work", "lead actor", "villain", "script", "humour", "editing",
                    "costume design", "finale"),
        "fillers": ("{Subj} watched it with {poss} brother.", "{Subj} saw the late showing.",
                    "{Subj} had read about it in a magazine.", "It runs a little over two hours.",
                    "{Poss} cousin had suggested it.", "{Subj} bought popcorn first."),
    },
    "product": {
        "openings": ("{name} bought {item} {when}.", "{name} ordered {item} online {when}.",
                     "{name} got {item} as a gift {when}."),
        "items": ("a pair of headphones", "the blender", "a laptop", "a hiking backpack",
                  "the electric kettle", "a phone case", "a desk lamp", "the robot vacuum",
                  "a rain jacket", "the coffee grinder"),
        "aspects": ("build quality", "price", "design", "packaging", "delivery", "manual",
                    "finish", "warranty", "customer support", "setup", "size", "colour",
                    "quality", "value"),
        "fillers": ("It arrived on a Tuesday.", "{Subj} compared it with three others first.",
                    "{Subj} has used it every day since.", "{Poss} old one broke in March.",
                    "{Subj} paid with a gift card.", "{Poss} sister has the same one."),
    },
}
WHEN = ("last week", "on Friday", "yesterday", "last month", "over the weekend",
        "on Monday evening", "recently", "a few days ago", "during the holidays")

POSITIVE_STRONG = ("excellent", "superb", "fantastic", "wonderful", "outstanding",
                   "brilliant", "amazing", "terrific", "exceptional", "marvelous")
POSITIVE_MILD = ("good", "nice", "pleasant", "solid", "enjoyable", "lovely", "impressive",
                 "charming", "great", "satisfying", "likeable", "neat")
NEGATIVE_STRONG = ("awful", "terrible", "dreadful", "horrible", "atrocious", "abysmal",
                   "disastrous", "appalling", "dismal", "horrendous")
NEGATIVE_MILD = ("bad", "poor", "bland", "disappointing", "mediocre", "weak", "dull",
                 "sloppy", "clumsy", "tedious", "boring", "underwhelming")
NEUTRAL_ADJ = ("okay", "average", "fine", "passable", "ordinary", "adequate",
               "unremarkable", "acceptable", "standard", "middling")
# adjectives whose negation reads naturally ("not good" -> negative, "not bad" -> positive)
NEGATABLE = {1: ("good", "great", "nice", "pleasant", "enjoyable", "impressive"),
             -1: ("bad", "disappointing", "bland", "dull", "boring", "weak")}

# "" entries: no intensifier most of the time
MILD_INTENSIFIERS = ("", "", "", "", "really", "very", "quite", "rather", "pretty", "so",
                     "genuinely", "remarkably", "somewhat", "incredibly", "extremely")
STRONG_INTENSIFIERS = ("", "", "", "absolutely", "truly", "simply", "just")
NEGATIONS = ("was not {adj}", "wasn't {adj}", "was not {adj} at all", "was never {adj}",
             "was hardly {adj}", "was not particularly {adj}")
COMPARATIVE = {1: "better", -1: "worse"}
FIND_NOTHING = {1: "wrong with", -1: "good about"}  # "could not find anything good about"

VERDICTS = {
    1: ("{Subj} would recommend it to anyone.", "{Subj} already told {poss} friends about it.",
        "It was worth every penny, {subj} said.", "{Subj} was glad {subj} chose it.",
        "{Subj} gave it five stars."),
    -1: ("{Subj} wants {poss} money back.", "{Subj} will warn {poss} friends about it.",
         "It was a waste of money, {subj} said.", "{Subj} regrets choosing it.",
         "{Subj} gave it one star."),
    0: ("{Subj} has no strong feelings either way.", "It was about what {subj} expected.",
        "{Subj} gave it three stars.", "{Subj} called it fair, nothing more.",
        "{Subj} shrugged when asked about it."),
}

# relative weights of the main-sentence constructions, tuned for TF-IDF accuracy ~0.85
POLAR_WEIGHTS = {"direct": 0.50, "negated": 0.20, "contrast": 0.20, "reinforced": 0.10}
NEUTRAL_WEIGHTS = {"middling": 0.30, "neither": 0.10, "not_great_not_bad": 0.20,
                   "mixed": 0.15, "balanced": 0.25}
TAIL_PROBS = {"none": 0.30, "filler": 0.35, "verdict": 0.35}
