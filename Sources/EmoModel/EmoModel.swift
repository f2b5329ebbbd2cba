// EmoModel
