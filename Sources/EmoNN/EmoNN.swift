// EmoNN
