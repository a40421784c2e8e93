"""The grammar that writes the embedded default's training corpus.

Each example is a (prompt, completion) pair: a short poem, lyric, slogan or micro-story
whose theme, form, mood and length follow from the prompt ("a short sea poem,
melancholy"), so the small model learns to be steered by those words.  Prompts that
leave out the mood or the length get a random one, so the model stays varied there and
a tune can lean it one way.  Pure Python and seeded: the same seed writes the same corpus.
"""
from __future__ import annotations

import random

THEMES = {
    "sea": {"nouns": ["wave", "tide", "shore", "gull", "harbor", "salt", "shell", "boat", "foam", "reef"],
            "places": ["the shore", "the harbor", "the deep", "the bay", "the pier"],
            "verbs": ["rolls", "breaks", "drifts", "shines", "calls"]},
    "forest": {"nouns": ["pine", "moss", "fern", "owl", "oak", "root", "leaf", "deer", "branch", "trail"],
               "places": ["the woods", "the clearing", "the thicket", "the old grove", "the trail"],
               "verbs": ["whispers", "grows", "sways", "hides", "waits"]},
    "city": {"nouns": ["street", "tower", "neon", "taxi", "window", "siren", "bridge", "crowd", "alley", "subway"],
             "places": ["the avenue", "the rooftop", "the station", "the square", "downtown"],
             "verbs": ["hums", "flashes", "rushes", "glows", "roars"]},
    "night": {"nouns": ["moon", "shadow", "lamp", "dream", "candle", "owl", "silence", "midnight", "dark", "sleep"],
              "places": ["the porch", "the empty road", "the attic", "the hill", "the window"],
              "verbs": ["falls", "settles", "glimmers", "waits", "turns"]},
    "winter": {"nouns": ["snow", "frost", "ice", "fire", "scarf", "sled", "breath", "chimney", "blizzard", "pine"],
               "places": ["the frozen lake", "the cabin", "the white field", "the hearth", "the pass"],
               "verbs": ["freezes", "drifts", "crackles", "settles", "bites"]},
    "rain": {"nouns": ["rain", "puddle", "cloud", "umbrella", "thunder", "gutter", "drizzle", "storm", "roof", "mist"],
             "places": ["the gutter", "the window", "the street", "the porch", "the gray field"],
             "verbs": ["taps", "pours", "drums", "falls", "washes"]},
    "mountain": {"nouns": ["peak", "ridge", "stone", "eagle", "cliff", "summit", "glacier", "valley", "trail", "cairn"],
                 "places": ["the summit", "the ridge", "the high pass", "the valley", "the cliff"],
                 "verbs": ["rises", "stands", "towers", "echoes", "endures"]},
    "desert": {"nouns": ["sand", "dune", "cactus", "sun", "mirage", "lizard", "wind", "canyon", "heat", "bone"],
               "places": ["the dunes", "the canyon", "the dry well", "the salt flat", "the mesa"],
               "verbs": ["burns", "shifts", "shimmers", "bakes", "sleeps"]},
    "stars": {"nouns": ["star", "comet", "planet", "galaxy", "orbit", "light", "sky", "telescope", "nebula", "void"],
              "places": ["the sky", "the far void", "the milky way", "the observatory", "the heavens"],
              "verbs": ["burns", "spins", "glitters", "wanders", "fades"]},
    "garden": {"nouns": ["rose", "bee", "tulip", "soil", "seed", "blossom", "gate", "vine", "butterfly", "petal"],
               "places": ["the garden", "the flower bed", "the greenhouse", "the hedge", "the orchard"],
               "verbs": ["blooms", "buzzes", "opens", "grows", "climbs"]},
    "train": {"nouns": ["train", "rail", "platform", "whistle", "ticket", "carriage", "engine", "track", "tunnel", "station"],
              "places": ["the platform", "the long track", "the tunnel", "the crossing", "the last stop"],
              "verbs": ["rattles", "departs", "whistles", "rolls", "arrives"]},
    "coffee": {"nouns": ["coffee", "cup", "mug", "bean", "steam", "espresso", "morning", "cafe", "sugar", "kettle"],
               "places": ["the cafe", "the kitchen", "the counter", "the corner table", "the window seat"],
               "verbs": ["steams", "wakes", "warms", "brews", "pours"]},
}

MOODS = {
    "melancholy": {"adjs": ["gray", "lonely", "faded", "broken", "empty", "cold", "distant", "weary"],
                   "feelings": ["sorrow", "grief", "longing", "tears", "regret", "loss"],
                   "acts": ["weeps", "mourns", "forgets", "sighs", "grieves"],
                   "endings": ["and no one comes back", "and the tears do not stop", "and I am alone again",
                               "and all of it is lost", "and the sorrow stays"]},
    "joyful": {"adjs": ["bright", "golden", "happy", "sunny", "dancing", "warm", "sparkling", "merry"],
               "feelings": ["joy", "laughter", "delight", "cheer", "glee", "wonder"],
               "acts": ["laughs", "sings", "dances", "shines", "celebrates"],
               "endings": ["and we laugh until morning", "and the whole world sings", "and joy spills over",
                           "and everything is bright", "and we dance again"]},
    "calm": {"adjs": ["quiet", "gentle", "soft", "still", "slow", "peaceful", "mild", "easy"],
             "feelings": ["peace", "rest", "stillness", "ease", "quiet", "calm"],
             "acts": ["rests", "breathes", "settles", "waits", "drifts"],
             "endings": ["and all is still", "and I breathe slowly", "and the day is at rest",
                         "and nothing needs to hurry", "and peace settles in"]},
    "angry": {"adjs": ["furious", "burning", "bitter", "harsh", "wild", "savage", "raging", "sharp"],
              "feelings": ["rage", "fury", "anger", "spite", "wrath", "scorn"],
              "acts": ["screams", "smashes", "rages", "howls", "strikes"],
              "endings": ["and the fury will not end", "and I scream at the sky", "and everything burns",
                          "and the rage grows louder", "and I break it all"]},
    "hopeful": {"adjs": ["new", "rising", "green", "open", "early", "brave", "clear", "young"],
                "feelings": ["hope", "promise", "faith", "courage", "dawn", "belief"],
                "acts": ["rises", "begins", "returns", "grows", "wakes"],
                "endings": ["and tomorrow will be kind", "and a new day begins", "and hope comes home",
                            "and we will rise again", "and the light returns"]},
    "eerie": {"adjs": ["ghostly", "pale", "strange", "hollow", "silent", "crooked", "haunted", "unseen"],
              "feelings": ["dread", "fear", "unease", "mystery", "chill", "doubt"],
              "acts": ["creeps", "whispers", "lurks", "watches", "vanishes"],
              "endings": ["and something is watching", "and the footsteps stop", "and no one answers",
                          "and the door opens by itself", "and the shadow stays"]},
}

FORMS = ("haiku", "couplet", "limerick", "slogan", "micro-story", "lyric", "poem")
LENGTHS = ("short", "long")

_LINES = [
    "the {adj} {noun} {verb} on {place}",
    "{adj} {noun}, {adj2} {noun2}",
    "a {adj} {noun} {act} by {place}",
    "I walk to {place} with {feeling}",
    "the {noun} {act}, the {noun2} {verb}",
    "over {place} the {adj} {noun} {verb}",
    "{feeling} in the {noun}, {feeling2} in the {noun2}",
    "we carry {feeling} to {place}",
    "every {noun} {act} in {adj} light",
    "the {noun2} remembers the {adj} {noun}",
]
_HAIKU = [
    ["{adj} {noun} at dusk", "the {noun} {act}", "{adj} {noun2}"],
    ["the {noun} {verb}", "{feeling} over {place}", "a {adj} {noun2}"],
    ["{adj} {noun} {verb}", "I hold my {feeling}", "{place} is {adj2}"],
]
_SLOGANS = [
    "{Noun}: {adj} as {feeling}, every day.",
    "Feel the {adj} {noun}. Choose {feeling}.",
    "{Place}, where the {noun} {verb} and {feeling} lives.",
    "Your {noun}, your {feeling}, your {adj} {noun2}.",
]
_STORY = [
    "She found a {adj} {noun} on {place}.",
    "Every morning the {noun} {verb}, and he {act}.",
    "Nobody spoke of the {noun2} after that.",
    "The {adj} {noun} {act} while the town sleeps.",
    "He kept the {noun} in his pocket, full of {feeling}.",
    "At {place} an old {noun2} waited for her.",
]


def _fill(template: str, rng: random.Random, theme: dict, mood: dict) -> str:
    noun, noun2 = rng.sample(theme["nouns"], 2)
    adj, adj2 = rng.sample(mood["adjs"], 2)
    feeling, feeling2 = rng.sample(mood["feelings"], 2)
    place = rng.choice(theme["places"])
    return template.format(noun=noun, noun2=noun2, Noun=noun.capitalize(), adj=adj, adj2=adj2,
                           feeling=feeling, feeling2=feeling2, place=place,
                           Place=place[4:].capitalize() if place.startswith("the ") else place.capitalize(),
                           verb=rng.choice(theme["verbs"]), act=rng.choice(mood["acts"]))


def completion(rng: random.Random, theme_name: str, form: str, mood_name: str, length: str) -> str:
    theme, mood = THEMES[theme_name], MOODS[mood_name]
    if form == "haiku":
        return "\n".join(_fill(t, rng, theme, mood) for t in rng.choice(_HAIKU))
    if form == "slogan":
        return _fill(rng.choice(_SLOGANS), rng, theme, mood)
    if form == "micro-story":
        count = rng.randint(2, 3) if length == "short" else rng.randint(4, 5)
        return " ".join(_fill(t, rng, theme, mood) for t in rng.sample(_STORY, count))
    if form == "couplet":
        count = 2
    elif form == "limerick":
        count = 5
    else:  # lyric and poem: the length word decides
        count = rng.randint(2, 3) if length == "short" else rng.randint(5, 6)
    lines = [_fill(t, rng, theme, mood) for t in rng.choices(_LINES, k=count - 1)]
    lines.append(rng.choice(mood["endings"]))
    if form == "lyric":  # a refrain, as songs have
        lines.insert(len(lines) // 2, f"oh {rng.choice(theme['nouns'])}, oh {rng.choice(mood['feelings'])}")
    return "\n".join(lines)


def prompt(rng: random.Random, theme: str, form: str, mood: str | None, length: str | None) -> str:
    """One of a few phrasings; ``None`` leaves the mood or the length unsaid."""
    size = f"{length} " if length else ""
    form_word = "poem" if form == "poem" else form
    choices = [f"a {size}{theme} {form_word}" + (f", {mood}" if mood else ""),
               f"{size}{form_word} about the {theme}" + (f", {mood}" if mood else ""),
               f"write a {size}{mood + ' ' if mood else ''}{form_word} about {theme}"]
    if mood:
        choices.append(f"{mood} {form_word}: {theme}")
    return rng.choice(choices)


def examples(count: int, seed: int = 0) -> list[tuple[str, str]]:
    """``count`` (prompt, completion) pairs from the grammar."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        theme = rng.choice(list(THEMES))
        form = rng.choice(FORMS)
        mood = rng.choice(list(MOODS))
        length = rng.choice(LENGTHS)
        said_mood = mood if rng.random() < 0.7 else None
        said_length = length if rng.random() < 0.6 and form in ("poem", "lyric", "micro-story") else None
        out.append((prompt(rng, theme, form, said_mood, said_length), completion(rng, theme, form, mood, length)))
    return out
