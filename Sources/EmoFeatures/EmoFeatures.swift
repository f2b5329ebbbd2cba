// EmoFeatures
